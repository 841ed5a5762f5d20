/* SPDX-License-Identifier: MIT */
/* The histogram wasm-runqlat.bpf.c keeps and the guest reads. */
#ifndef __WASM_RUNQLAT_H
#define __WASM_RUNQLAT_H

#define MAX_SLOTS 26

/* slots[i]: waits of [2^i, 2^(i+1)) microseconds (slot 0 also holds 0 us) */
struct hist {
	__u32 slots[MAX_SLOTS];
};

#endif /* __WASM_RUNQLAT_H */
