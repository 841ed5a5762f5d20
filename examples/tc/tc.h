/* SPDX-License-Identifier: MIT */
/* Event sent from tc.bpf.c to user space: one IPv4 packet. */
#ifndef __TC_H
#define __TC_H

struct packet {
	unsigned int saddr;	/* host byte order */
	unsigned int daddr;
	unsigned int len;
	unsigned char ttl;
	unsigned char protocol;
};

#endif /* __TC_H */
