/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

/* qualifiers are kept in export_types member strings */
struct event {
	const char *name;		/* "const char *" */
	volatile int counter;		/* "volatile int" */
	const volatile unsigned long flags;	/* "const volatile unsigned long" */
	char *const fixed;		/* const pointer: "char * const" */
	const int *const *pp;		/* "const int * const *" */
	void *restrict buf;		/* restrict pointer */
	const char label[8];		/* const array */
	volatile struct {
		int a;
	} vs;				/* qualified anonymous struct */
};

#endif
