// SPDX-License-Identifier: MIT
/* The guest that tests/test_wasm_ship.py ships through a registry, a URL and a
 * standalone file: it prints its arguments; with "load" first it also loads
 * examples/globals' BPF object (embedded in it by the skeleton) into the kernel
 * and reads a value back from its .data. */
#include <stdio.h>
#include <string.h>
#include "globals.skel.h"

int main(int argc, char **argv)
{
	struct globals_bpf *skel;

	printf("ship: %d args", argc - 1);
	for (int i = 1; i < argc; i++)
		printf(" [%s]", argv[i]);
	printf("\n");
	if (argc < 2 || strcmp(argv[1], "load") != 0)
		return argc > 1 && strcmp(argv[1], "fail") == 0 ? 3 : 0;
	skel = globals_bpf__open();
	if (!skel) {
		printf("ship: open failed\n");
		return 1;
	}
	strcpy(skel->data->greeting, "shipped");
	if (globals_bpf__load(skel)) {
		printf("ship: load failed\n");
		return 2;
	}
	printf("ship: loaded, greeting=%s\n", skel->data->greeting);
	globals_bpf__destroy(skel);
	return 0;
}
