/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

enum event_kind {
	KIND_EXEC = 1,
	KIND_EXIT = 2,
	KIND_FORK = -1,			/* negative value: signed enum */
};

/* a value above 32 bits makes it a 64-bit enum (BTF_KIND_ENUM64) */
enum big_mask {
	MASK_LOW = 1,
	MASK_HIGH = 0x100000000ULL,
	MASK_ALL = 0xffffffffffffffffULL,
};

typedef enum {
	LEVEL_DEBUG,
	LEVEL_INFO,
	LEVEL_WARN,
} level_t;				/* typedef of an anonymous enum */

typedef enum event_kind kind_t;		/* typedef of a named enum */

struct event {
	int pid;
	enum event_kind kind;		/* ENUM -> "enum" */
	enum big_mask mask;		/* ENUM64 -> "enum" */
	level_t level;			/* TYPEDEF -> "level_t" */
	kind_t kind2;			/* TYPEDEF -> "kind_t" */
	enum event_kind kinds[2];	/* array of enum -> "enum event_kind[2]" */
};

#endif
