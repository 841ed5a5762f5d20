/* The six imports of eunomia's wasm-bpf ABI, declared here directly (as
 * libbpf-wasm.h of the guest SDK declares them) so the tests depend on no SDK. */
#ifndef WASMH_ABI_H
#define WASMH_ABI_H
#include <stddef.h>
#include <stdint.h>

#define WASM_BPF(name) __attribute__((import_module("wasm_bpf"), import_name(#name)))

WASM_BPF(wasm_load_bpf_object) uint64_t wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);
WASM_BPF(wasm_attach_bpf_program) int wasm_attach_bpf_program(uint64_t obj, const char *name,
							     const char *attach_target);
WASM_BPF(wasm_bpf_buffer_poll) int wasm_bpf_buffer_poll(uint64_t obj, int fd, int32_t sample_func,
						       uint32_t ctx, char *data, int max_size,
						       int timeout_ms);
WASM_BPF(wasm_bpf_map_fd_by_name) int wasm_bpf_map_fd_by_name(uint64_t obj, const char *name);
WASM_BPF(wasm_bpf_map_operate) int wasm_bpf_map_operate(int fd, int cmd, void *key, void *value,
						       void *next_key, uint64_t flags);
WASM_BPF(wasm_close_bpf_object) int wasm_close_bpf_object(uint64_t obj);

typedef int (*sample_fn)(void *ctx, void *data, size_t size);
#endif
