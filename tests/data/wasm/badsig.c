/* Imports wasm_bpf_map_fd_by_name with the wrong type: (i32) -> i32. */
#include <stdio.h>

__attribute__((import_module("wasm_bpf"), import_name("wasm_bpf_map_fd_by_name")))
int wasm_bpf_map_fd_by_name(int name);

int main(void)
{
	printf("linked\n");
	return wasm_bpf_map_fd_by_name(0);
}
