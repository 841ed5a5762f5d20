// SPDX-License-Identifier: MIT
/* Sets every variable of layout.bpf.c's .rodata and .data through the
 * skeleton, then loads: the test reads them back from the object the host
 * was handed. */
#include "layout.skel.h"

int main(void)
{
	struct layout_bpf *skel = layout_bpf__open();

	if (!skel)
		return 1;
	skel->rodata->verbose = 1;
	skel->rodata->min_len = -123456789012345LL;
	skel->rodata->origin.x = 0xbeef;
	skel->rodata->origin.y = 0x0102030405060708ULL;
	strcpy(skel->rodata->label, "ecc-wasm");
	skel->rodata->level = 0x5a;
	skel->rodata->threshold = 0xfedcba9876543210ULL;
	skel->data->calls = -42;
	if (layout_bpf__load(skel))
		return 2;
	layout_bpf__destroy(skel);
	return 0;
}
