/* SPDX-License-Identifier: MIT */
/* Structs whose wasm32 layout differs from the BPF side's unless ecc's
 * wasm.h fixes it: long, padding, unions, anonymous members, bitfields,
 * bool, enums, nested arrays, a flexible array. */
#ifndef __LAYOUT_H
#define __LAYOUT_H

enum wg_kind { KIND_EXEC = 1, KIND_EXIT = 2, KIND_BIG = 100000 };

struct wg_point {
	__u16 x;
	__u64 y;		/* 6 bytes of padding before it on both sides */
};

union wg_value {
	__u32 u32;
	__u64 u64;
	char bytes[12];		/* the union is 16 bytes: aligned to 8 */
};

struct wg_flags {
	__u8 a : 3;
	__u32 b : 20;
	__u8 c : 1;
	bool d : 1;
	__u16 e;
	__u64 f : 35;
};

struct wg_sample {
	long l;			/* 8 bytes here, 4 in wasm32 */
	unsigned long ul;
	bool flag;
	enum wg_kind kind;
	struct wg_point pts[2];
	union wg_value val;
	struct {
		__u8 tag;
		__u32 id;
	} inner;
	union {
		__s16 s;
		__u8 raw[3];
	};
	struct wg_flags flags;
	char grid[3][5];
	__s8 small;
	double ratio;
	__u32 trailer[];
};

#endif /* __LAYOUT_H */
