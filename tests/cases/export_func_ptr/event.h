/* SPDX-License-Identifier: MIT */
#ifndef __EVENT_H
#define __EVENT_H

typedef int (*handler_fn)(void *ctx, int code);

struct event {
	int pid;
	int (*callback)(void *, int);		/* "int (*)(void *, int)" */
	void (*notify)(void);			/* "void (*)(void)" */
	const char *(*namer)(unsigned long long id, char *buf);	/* returns a pointer */
	long (*vararg)(const char *fmt, ...);	/* variadic */
	handler_fn handler;			/* typedef: "handler_fn" */
	int (*table[2])(int);			/* array of function pointers */
};

#endif
