/* SPDX-License-Identifier: MIT */
/* The parts of struct shape that are not events themselves. */
#ifndef __POINT_H
#define __POINT_H

enum mode { MODE_A = 1, MODE_B = 2, MODE_NONE = 7 };

struct point {
	int x;
	int y;
};

#endif /* __POINT_H */
