/* Events of the large benchmark program. */
#ifndef LARGE_H
#define LARGE_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 26

enum event_kind { EV_EXEC = 1, EV_EXIT, EV_OPEN, EV_SWITCH, EV_SIGNAL };

struct event {
	enum event_kind kind;
	int pid;
	int ppid;
	int tid;
	unsigned int uid;
	int ret;
	unsigned long long ts_ns;
	unsigned long long delta_ns;
	char comm[TASK_COMM_LEN];
	char target[TASK_COMM_LEN];
	char path[128];
};

struct hist {
	unsigned int slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

#endif
