/* The record both the ring buffer and the perf buffer tests send. */
#ifndef ECC_TEST_EVENT_H
#define ECC_TEST_EVENT_H
struct event {
	int pid;
	int ppid;
	int magic;
	char comm[16];
};
#endif
