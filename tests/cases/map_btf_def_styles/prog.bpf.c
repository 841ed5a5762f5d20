// SPDX-License-Identifier: MIT
/* Case map_btf_def_styles: BTF-defined maps (.maps) in the styles libbpf
 * accepts: __uint/__type, key_size/value_size without types, map_flags, a
 * named struct type as key, map-in-map with __array(values, ...) and a
 * static initializer, a map-in-map with an anonymous inner definition, and
 * a program array with __array(values, <func proto>) initialized with a
 * tail-call target. The inner map template of outer_hash is not a map of
 * its own. The tail-call target is a program (own section).
 * maps follow the order of the VARs in the .maps DATASEC, which is NOT the
 * declaration order: clang 19 writes inner_a, inner_b, outer, jump_table
 * (the maps the initializers refer to, and the initialized ones) before
 * typed_hash, sized_array, lru_flags, percpu, outer_hash. libbpf 1.4 opens
 * them in that DATASEC order. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

/* __uint + __type */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, __u64);
} typed_hash SEC(".maps");

/* sizes only, no BTF key/value types */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} sized_array SEC(".maps");

/* map_flags */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u32);
} lru_flags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu SEC(".maps");

/* a plain map used as inner map value below */
struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} inner_a SEC(".maps"), inner_b SEC(".maps");

/* map-in-map: __array(values, <inner map type>) with a static initializer */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [1] = &inner_b },
};

/* map-in-map with an anonymous inner map definition, left empty */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 8);
		__type(key, __u32);
		__type(value, __u64);
	});
} outer_hash SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int tail_target(void *ctx)
{
	return 0;
}

/* program array: __array(values, <function prototype>), initialized */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = { [0] = (void *)&tail_target },
};

SEC("tp/syscalls/sys_enter_getpid")
int use_maps(void *ctx)
{
	struct flow_key fk = {};
	__u32 zero = 0, one = 1;
	__u64 v = 1, *pv;
	void *inner;

	bpf_map_update_elem(&typed_hash, &fk, &v, BPF_ANY);
	bpf_map_update_elem(&sized_array, &zero, &v, BPF_ANY);
	bpf_map_update_elem(&lru_flags, &zero, &one, BPF_ANY);
	pv = bpf_map_lookup_elem(&percpu, &zero);
	if (pv)
		*pv += 1;
	inner = bpf_map_lookup_elem(&outer, &zero);
	if (inner)
		bpf_map_update_elem(inner, &zero, &one, BPF_ANY);
	inner = bpf_map_lookup_elem(&outer_hash, &zero);
	if (inner)
		bpf_map_update_elem(inner, &zero, &v, BPF_ANY);
	bpf_tail_call(ctx, &jump_table, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
