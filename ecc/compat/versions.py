"""The first kernel release of every program type, map type, attach type and helper.

The UAPI enums of include/uapi/linux/bpf.h (``bpf_prog_type``, ``bpf_map_type``,
``bpf_attach_type``, ``bpf_func_id``) only ever grow at the end, so each table
below lists the names in enum order, grouped by the release that added them:
an item's enum value is its position (counting from 1, or from 0 for attach
types), and the releases never go down along an enum. tests/test_compat_versions.py
checks both against the running kernel's own BTF, and the table against what
libbpf's probes (``bpftool feature probe``) find on this kernel.

Sources, cross-checked against each other:

- "BPF Features by Linux Kernel Version", kept with BCC
  (github.com/iovisor/bcc, docs/kernel-versions.md): a release per program
  type, map type and helper, each with the commit that added it;
- the eBPF Docs project's feature table (github.com/isovalent/ebpf-docs,
  data/feature-versions.yaml), derived from the kernel's git tags: the same,
  plus attach types up to BPF_LSM_CGROUP.

Where they disagree, the release of the commit (its date against the release's
merge window) and the enum order decide. BCC's list is wrong for
tcp_gen_syncookie (5.4, not 5.3), tcp_send_ack, send_signal_thread and
jiffies64 (5.6, not 5.5), read_branch_records, xdp_output,
get_current_ancestor_cgroup_id and sk_assign (5.7, not 5.6), seq_printf,
seq_write, sk_cgroup_id, sk_ancestor_cgroup_id and csum_level (5.8, not 5.7),
BPF_PROG_TYPE_SYSCALL (5.14, not 5.15: the same commit as helper sys_bpf);
it misspells skc_to_mptcp_sock. The eBPF Docs table is wrong for
get_prandom_u32 (4.1: helper 7 sits between 4.1's helpers 6 and 8). The
helpers map_lookup_elem and map_update_elem were in the 3.18 header, but no
program type could call them before 3.19. Attach types after BPF_LSM_CGROUP
(neither list has them) are dated by the bpf-next pull of their release:
BPF_STRUCT_OPS and BPF_NETFILTER 6.4, tcx and uprobe_multi 6.6, the unix
socket cgroup hooks and netkit 6.7, kprobe_session 6.10, uprobe_session 6.13.

kfuncs are not UAPI: they are checked against the target's BTF only.
"""

from __future__ import annotations

Version = tuple[int, int]

# Each: (release, names added in it, in enum order).
_PROG_TYPES: tuple[tuple[Version, str], ...] = (
    ((3, 19), "SOCKET_FILTER"),
    ((4, 1), "KPROBE SCHED_CLS SCHED_ACT"),
    ((4, 7), "TRACEPOINT"),
    ((4, 8), "XDP"),
    ((4, 9), "PERF_EVENT"),
    ((4, 10), "CGROUP_SKB CGROUP_SOCK LWT_IN LWT_OUT LWT_XMIT"),
    ((4, 13), "SOCK_OPS"),
    ((4, 14), "SK_SKB"),
    ((4, 15), "CGROUP_DEVICE"),
    ((4, 17), "SK_MSG RAW_TRACEPOINT CGROUP_SOCK_ADDR"),
    ((4, 18), "LWT_SEG6LOCAL LIRC_MODE2"),
    ((4, 19), "SK_REUSEPORT"),
    ((4, 20), "FLOW_DISSECTOR"),
    ((5, 2), "CGROUP_SYSCTL RAW_TRACEPOINT_WRITABLE"),
    ((5, 3), "CGROUP_SOCKOPT"),
    ((5, 5), "TRACING"),
    ((5, 6), "STRUCT_OPS EXT"),
    ((5, 7), "LSM"),
    ((5, 9), "SK_LOOKUP"),
    ((5, 14), "SYSCALL"),
    ((6, 4), "NETFILTER"),
)

_MAP_TYPES: tuple[tuple[Version, str], ...] = (
    ((3, 19), "HASH ARRAY"),
    ((4, 2), "PROG_ARRAY"),
    ((4, 3), "PERF_EVENT_ARRAY"),
    ((4, 6), "PERCPU_HASH PERCPU_ARRAY STACK_TRACE"),
    ((4, 8), "CGROUP_ARRAY"),
    ((4, 10), "LRU_HASH LRU_PERCPU_HASH"),
    ((4, 11), "LPM_TRIE"),
    ((4, 12), "ARRAY_OF_MAPS HASH_OF_MAPS"),
    ((4, 14), "DEVMAP SOCKMAP"),
    ((4, 15), "CPUMAP"),
    ((4, 18), "XSKMAP SOCKHASH"),
    ((4, 19), "CGROUP_STORAGE REUSEPORT_SOCKARRAY"),
    ((4, 20), "PERCPU_CGROUP_STORAGE QUEUE STACK"),
    ((5, 2), "SK_STORAGE"),
    ((5, 4), "DEVMAP_HASH"),
    ((5, 6), "STRUCT_OPS"),
    ((5, 8), "RINGBUF"),
    ((5, 10), "INODE_STORAGE"),
    ((5, 11), "TASK_STORAGE"),
    ((5, 16), "BLOOM_FILTER"),
    ((6, 1), "USER_RINGBUF"),
    ((6, 2), "CGRP_STORAGE"),
    ((6, 9), "ARENA"),
)

# enum bpf_attach_type starts at 0 (BPF_CGROUP_INET_INGRESS).
_ATTACH_TYPES: tuple[tuple[Version, str], ...] = (
    ((4, 10), "CGROUP_INET_INGRESS CGROUP_INET_EGRESS CGROUP_INET_SOCK_CREATE"),
    ((4, 13), "CGROUP_SOCK_OPS"),
    ((4, 14), "SK_SKB_STREAM_PARSER SK_SKB_STREAM_VERDICT"),
    ((4, 15), "CGROUP_DEVICE"),
    ((4, 17),
     "SK_MSG_VERDICT CGROUP_INET4_BIND CGROUP_INET6_BIND CGROUP_INET4_CONNECT "
     "CGROUP_INET6_CONNECT CGROUP_INET4_POST_BIND CGROUP_INET6_POST_BIND"),
    ((4, 18), "CGROUP_UDP4_SENDMSG CGROUP_UDP6_SENDMSG LIRC_MODE2"),
    ((4, 20), "FLOW_DISSECTOR"),
    ((5, 2), "CGROUP_SYSCTL CGROUP_UDP4_RECVMSG CGROUP_UDP6_RECVMSG"),
    ((5, 3), "CGROUP_GETSOCKOPT CGROUP_SETSOCKOPT"),
    ((5, 5), "TRACE_RAW_TP TRACE_FENTRY TRACE_FEXIT"),
    ((5, 7), "MODIFY_RETURN LSM_MAC"),
    ((5, 8),
     "TRACE_ITER CGROUP_INET4_GETPEERNAME CGROUP_INET6_GETPEERNAME "
     "CGROUP_INET4_GETSOCKNAME CGROUP_INET6_GETSOCKNAME XDP_DEVMAP"),
    ((5, 9), "CGROUP_INET_SOCK_RELEASE XDP_CPUMAP SK_LOOKUP XDP"),
    ((5, 13), "SK_SKB_VERDICT"),
    ((5, 14), "SK_REUSEPORT_SELECT SK_REUSEPORT_SELECT_OR_MIGRATE"),
    ((5, 15), "PERF_EVENT"),
    ((5, 18), "TRACE_KPROBE_MULTI"),
    ((6, 0), "LSM_CGROUP"),
    ((6, 4), "STRUCT_OPS NETFILTER"),
    ((6, 6), "TCX_INGRESS TCX_EGRESS TRACE_UPROBE_MULTI"),
    ((6, 7),
     "CGROUP_UNIX_CONNECT CGROUP_UNIX_SENDMSG CGROUP_UNIX_RECVMSG "
     "CGROUP_UNIX_GETPEERNAME CGROUP_UNIX_GETSOCKNAME NETKIT_PRIMARY NETKIT_PEER"),
    ((6, 10), "TRACE_KPROBE_SESSION"),
    ((6, 13), "TRACE_UPROBE_SESSION"),
)

# enum bpf_func_id, without the BPF_FUNC_ prefix; helper 1 is map_lookup_elem.
_HELPERS: tuple[tuple[Version, str], ...] = (
    ((3, 19), "map_lookup_elem map_update_elem map_delete_elem"),
    ((4, 1),
     "probe_read ktime_get_ns trace_printk get_prandom_u32 get_smp_processor_id "
     "skb_store_bytes l3_csum_replace l4_csum_replace"),
    ((4, 2),
     "tail_call clone_redirect get_current_pid_tgid get_current_uid_gid "
     "get_current_comm"),
    ((4, 3),
     "get_cgroup_classid skb_vlan_push skb_vlan_pop skb_get_tunnel_key "
     "skb_set_tunnel_key perf_event_read"),
    ((4, 4), "redirect get_route_realm perf_event_output"),
    ((4, 5), "skb_load_bytes"),
    ((4, 6), "get_stackid csum_diff skb_get_tunnel_opt skb_set_tunnel_opt"),
    ((4, 8),
     "skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc "
     "get_current_task probe_write_user"),
    ((4, 9),
     "current_task_under_cgroup skb_change_tail skb_pull_data csum_update "
     "set_hash_invalid"),
    ((4, 10), "get_numa_node_id skb_change_head xdp_adjust_head"),
    ((4, 11), "probe_read_str"),
    ((4, 12), "get_socket_cookie get_socket_uid"),
    ((4, 13), "set_hash setsockopt skb_adjust_room"),
    ((4, 14), "redirect_map sk_redirect_map sock_map_update"),
    ((4, 15), "xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt"),
    ((4, 16), "override_return sock_ops_cb_flags_set"),
    ((4, 17), "msg_redirect_map msg_apply_bytes msg_cork_bytes msg_pull_data bind"),
    ((4, 18),
     "xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative "
     "fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap "
     "lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown "
     "skb_cgroup_id get_current_cgroup_id"),
    ((4, 19), "get_local_storage sk_select_reuseport skb_ancestor_cgroup_id"),
    ((4, 20),
     "sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem "
     "map_peek_elem msg_push_data"),
    ((5, 0), "msg_pop_data rc_pointer_rel"),
    ((5, 1), "spin_lock spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock"),
    ((5, 2),
     "skc_lookup_tcp tcp_check_syncookie sysctl_get_name sysctl_get_current_value "
     "sysctl_get_new_value sysctl_set_new_value strtol strtoul sk_storage_get "
     "sk_storage_delete"),
    ((5, 3), "send_signal"),
    ((5, 4), "tcp_gen_syncookie"),
    ((5, 5),
     "skb_output probe_read_user probe_read_kernel probe_read_user_str "
     "probe_read_kernel_str"),
    ((5, 6), "tcp_send_ack send_signal_thread jiffies64"),
    ((5, 7),
     "read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie "
     "get_current_ancestor_cgroup_id sk_assign"),
    ((5, 8),
     "ktime_get_boot_ns seq_printf seq_write sk_cgroup_id sk_ancestor_cgroup_id "
     "ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard ringbuf_query "
     "csum_level"),
    ((5, 9),
     "skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock "
     "skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack"),
    ((5, 10),
     "load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get "
     "inode_storage_delete d_path copy_from_user snprintf_btf seq_printf_btf "
     "skb_cgroup_classid redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer"),
    ((5, 11),
     "task_storage_get task_storage_delete get_current_task_btf bprm_opts_set "
     "ktime_get_coarse_ns ima_inode_hash sock_from_file"),
    ((5, 12), "check_mtu"),
    ((5, 13), "for_each_map_elem snprintf"),
    ((5, 14), "sys_bpf btf_find_by_name_kind sys_close"),
    ((5, 15),
     "timer_init timer_set_callback timer_start timer_cancel get_func_ip "
     "get_attach_cookie task_pt_regs"),
    ((5, 16), "get_branch_snapshot trace_vprintk skc_to_unix_sock kallsyms_lookup_name"),
    ((5, 17), "find_vma loop strncmp get_func_arg get_func_ret get_func_arg_cnt"),
    ((5, 18),
     "get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes "
     "copy_from_user_task skb_set_tstamp ima_file_hash"),
    ((5, 19),
     "kptr_xchg map_lookup_percpu_elem skc_to_mptcp_sock dynptr_from_mem "
     "ringbuf_reserve_dynptr ringbuf_submit_dynptr ringbuf_discard_dynptr "
     "dynptr_read dynptr_write dynptr_data"),
    ((6, 0),
     "tcp_raw_gen_syncookie_ipv4 tcp_raw_gen_syncookie_ipv6 "
     "tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6"),
    ((6, 1), "ktime_get_tai_ns user_ringbuf_drain"),
    ((6, 2), "cgrp_storage_get cgrp_storage_delete"),
)


def _numbered(groups: tuple[tuple[Version, str], ...], first: int,
              ) -> dict[int, tuple[str, Version]]:
    out: dict[int, tuple[str, Version]] = {}
    for since, names in groups:
        for name in names.split():
            out[first + len(out)] = (name, since)
    return out


# enum value -> (name without its enum prefix, first release)
PROG_TYPES = _numbered(_PROG_TYPES, 1)
MAP_TYPES = _numbered(_MAP_TYPES, 1)
ATTACH_TYPES = _numbered(_ATTACH_TYPES, 0)
HELPERS = _numbered(_HELPERS, 1)
ATTACH_BY_NAME = {name: (number, since) for number, (name, since) in ATTACH_TYPES.items()}
