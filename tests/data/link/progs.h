#ifndef PROGS_H
#define PROGS_H

struct event {
	int tgid;
	unsigned long long calls;
	char comm[16];
};

#endif
