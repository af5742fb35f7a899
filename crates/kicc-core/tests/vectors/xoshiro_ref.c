/* xoshiro256** 1.0 and splitmix64, as published by David Blackman and Sebastiano Vigna
   (prng.di.unimi.it, xoshiro256starstar.c and splitmix64.c); only main() is ours. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint64_t rotl(const uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t s[4];

uint64_t next(void) {
	const uint64_t result = rotl(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static uint64_t x; /* splitmix64 state */

uint64_t splitmix_next(void) {
	uint64_t z = (x += 0x9e3779b97f4a7c15);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
	return z ^ (z >> 31);
}

int main(void) {
	/* 1: the raw generator from the state {1, 2, 3, 4}. */
	s[0] = 1; s[1] = 2; s[2] = 3; s[3] = 4;
	printf("state 1,2,3,4:\n");
	for (int i = 0; i < 10; i++) printf("0x%016llx,\n", (unsigned long long)next());

	/* 2: seeding as kicc-core does: 32 bytes read as 4 little-endian words, each XORed
	   with one splitmix64 output, splitmix64 started at (w0^w1^w2^w3^golden). */
	uint8_t seeds[2][32];
	for (int i = 0; i < 32; i++) { seeds[0][i] = 7; seeds[1][i] = (uint8_t)i; }
	for (int k = 0; k < 2; k++) {
		for (int w = 0; w < 4; w++) {
			uint64_t v = 0;
			for (int b = 7; b >= 0; b--) v = (v << 8) | seeds[k][w * 8 + b];
			s[w] = v;
		}
		x = s[0] ^ s[1] ^ s[2] ^ s[3] ^ 0x9e3779b97f4a7c15;
		for (int w = 0; w < 4; w++) s[w] ^= splitmix_next();
		printf("seed %d:\n", k);
		for (int i = 0; i < 6; i++) printf("0x%016llx,\n", (unsigned long long)next());
	}
	/* 3: splitmix64 itself from 1234567 (the published example seed). */
	x = 1234567;
	printf("splitmix64 1234567:\n");
	for (int i = 0; i < 5; i++) printf("0x%016llx,\n", (unsigned long long)splitmix_next());
	return 0;
}
