/* SPDX-License-Identifier: MIT */
/* Key of the sample counts of profile.bpf.c. */
#ifndef __PROFILE_H
#define __PROFILE_H

#define TASK_COMM_LEN 16

/* one distinct (process, user stack, kernel stack) seen by the sampler */
struct key_t {
	__u32 pid;
	int user_stack_id;	/* id in the stack map, or -errno */
	int kern_stack_id;
	char comm[TASK_COMM_LEN];
};

#endif /* __PROFILE_H */
