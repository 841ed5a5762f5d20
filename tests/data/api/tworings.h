/* SPDX-License-Identifier: MIT */
#ifndef __TWORINGS_H
#define __TWORINGS_H

struct tick {
	unsigned int seq;
};

#endif /* __TWORINGS_H */
