"""Caffe2's command-line flags, as ``workspace.GlobalInit(["prog", "--flag=value"])`` sets them.

Applied here: ``--caffe2_log_level`` (Caffe2's levels: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL;
negative values are verbose levels, i.e. DEBUG) sets the level of the ``caffe2ops`` logger, and
``--caffe2_omp_num_threads`` / ``--caffe2_mkl_num_threads`` set the kernels' thread count. Every
other Caffe2 flag is accepted and ignored with a warning naming it (caffe2ops has nothing it would
change). A flag Caffe2 did not know raises, as Caffe2's ``GlobalInit`` did.

>>> parse_flags(["caffe2", "--caffe2_log_level=2", "--caffe2_keep_on_shrink"])
{'caffe2_log_level': '2', 'caffe2_keep_on_shrink': 'true'}
"""

from __future__ import annotations

import logging
import warnings

from caffe2ops.errors import OperatorError

# The flags Caffe2 1.5.0 (with c10's logging flags) defines; names only.
CAFFE2_FLAGS = frozenset("""
caffe2_cpu_allocator_do_junk_fill caffe2_cpu_allocator_do_zero_fill caffe2_cpu_numa_enabled
caffe2_cub_bin_growth caffe2_cub_max_bin caffe2_cub_max_managed_mb caffe2_cub_min_bin
caffe2_cub_print_allocation_events caffe2_cuda_memory_pool caffe2_disable_implicit_engine_preference
caffe2_dnnlowp_acc16_density_threshold caffe2_dnnlowp_acc16_k_threshold
caffe2_dnnlowp_acc16_m_threshold caffe2_dnnlowp_acc16_n_threshold
caffe2_dnnlowp_activation_p99_threshold caffe2_dnnlowp_activation_quantization_kind
caffe2_dnnlowp_activation_quantization_precision caffe2_dnnlowp_copy_to_32bit_frequency
caffe2_dnnlowp_dump_tensors caffe2_dnnlowp_eltwise_quantization_precision
caffe2_dnnlowp_enforce_default_operators caffe2_dnnlowp_force_scale_power_of_two
caffe2_dnnlowp_force_slow_path caffe2_dnnlowp_nbits_in_non_outlier
caffe2_dnnlowp_preserve_activation_sparsity caffe2_dnnlowp_preserve_weight_sparsity
caffe2_dnnlowp_requantization_multiplier_precision caffe2_dnnlowp_shared_int32_buffer
caffe2_dnnlowp_weight_p99_threshold caffe2_dnnlowp_weight_quantization_kind
caffe2_dnnlowp_weight_quantization_precision caffe2_force_shared_col_buffer
caffe2_gpu_memory_report_interval_mb caffe2_gpu_memory_tracking
caffe2_handle_executor_threads_exceptions caffe2_keep_on_shrink caffe2_log_level
caffe2_max_keep_on_shrink_memory caffe2_max_tensor_serializer_threads caffe2_mkl_num_threads
caffe2_net_async_check_stream_status caffe2_net_async_inference_mode caffe2_net_async_max_gpus
caffe2_net_async_max_numa_nodes caffe2_net_async_names_to_trace
caffe2_net_async_profile_operators caffe2_net_async_run_root_tasks_inline
caffe2_net_async_thread_pool_size caffe2_net_async_tracing_dumping_nth
caffe2_net_async_tracing_filepath caffe2_net_async_tracing_nth caffe2_net_async_use_per_net_pools
caffe2_net_async_use_single_pool caffe2_nets caffe2_omp_num_threads
caffe2_operator_max_engine_name_length caffe2_operator_throw_if_fp_exceptions
caffe2_operator_throw_if_fp_overflow_exceptions
caffe2_operator_throw_on_first_occurrence_if_fp_exceptions caffe2_override_executor
caffe2_print_blob_sizes_at_exit caffe2_print_stacktraces caffe2_profile_depthwise
caffe2_profile_nnpack caffe2_quit_on_unsupported_cpu_feature caffe2_report_cpu_memory_usage
caffe2_rnn_executor caffe2_serialize_fp16_as_bytes caffe2_serialize_using_bytes_as_holder
caffe2_simple_net_benchmark_run_whole_net caffe2_streams_per_gpu caffe2_task_graph_engine
caffe2_tensor_chunk_size caffe2_threadpool_android_cap caffe2_threadpool_force_inline
caffe2_threadpool_ios_cap caffe2_tvm_min_ops caffe2_tvm_profiling_based_jit
caffe2_use_fatal_for_enforce caffe2_version caffe2_workspace_stack_debug
v minloglevel logtostderr alsologtostderr stderrthreshold log_dir
""".split())

_LOG_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR, 3: logging.CRITICAL}
LOGGER = logging.getLogger("caffe2ops")


def parse_flags(args) -> dict[str, str]:
    """``{flag: value}`` from ``args`` (``args[0]`` is the program name, as in Caffe2)."""
    args = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
    values: dict[str, str] = {}
    for arg in args[1:]:
        if not arg.startswith("-"):
            continue  # positional arguments are left to the program (gflags does the same)
        name, sep, value = arg.lstrip("-").partition("=")
        if not sep and name.startswith("no") and name[2:] in CAFFE2_FLAGS:
            name, value = name[2:], "false"
        elif not sep:
            value = "true"
        if name not in CAFFE2_FLAGS:
            raise OperatorError(
                f"GlobalInit: unrecognized commandline argument: {arg} (Caffe2 refused it too)"
            )
        values[name] = value
    return values


def _int_flag(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OperatorError(f"GlobalInit: --{name} expects an integer, got {value!r}") from None


def apply_flags(args) -> dict[str, str]:
    """Apply the flags that matter here (see the module doc); returns what was parsed."""
    values = parse_flags(args)
    for name, value in values.items():
        if name == "caffe2_log_level":
            level = _int_flag(name, value)
            default = logging.DEBUG if level < 0 else logging.CRITICAL
            LOGGER.setLevel(_LOG_LEVELS.get(level, default))
        elif name in ("caffe2_omp_num_threads", "caffe2_mkl_num_threads"):
            threads = _int_flag(name, value)
            if threads > 0:
                from caffe2ops.kernels import set_num_threads

                set_num_threads(threads)
        else:
            warnings.warn(
                f"GlobalInit: --{name}={value} is a Caffe2 flag that changes nothing in "
                "caffe2ops; ignored",
                stacklevel=3,
            )
    return values
