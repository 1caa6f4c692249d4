/* SPDX-License-Identifier: MIT */
/* cmocka checks that say what failed, in the test's own words, with both
 * values of a comparison (tests/bpf/test_lifecycle.c, test_limits.c). */
#ifndef TETHER_TESTS_CHECK_H
#define TETHER_TESTS_CHECK_H

#include "control/protocol.h"

void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond))                                                 \
			check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* Equality of integers, with both values in the message. */
#define CHECK_EQ(actual, expected, fmt, ...)                                             \
	do {                                                                             \
		unsigned long long actual_ = (unsigned long long)(actual);               \
		unsigned long long expected_ = (unsigned long long)(expected);           \
		if (actual_ != expected_)                                                \
			check_failed(__FILE__, __LINE__, #actual " == " #expected,       \
				     fmt ": got %llu (0x%llx), expected %llu (0x%llx)",  \
				     ##__VA_ARGS__, actual_, actual_, expected_, expected_); \
	} while (0)

/* Text for messages that lives until check_strings_free() (each test's
 * tear-down): S() formats one; check_string_keep() takes one made with glib. */
const char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *check_string_keep(char *text);
void check_strings_free(void);

/* A lifecycle call's result: its code, and on an error a message. */
#define CHECK_PROTO(lc, call, expected, fmt, ...)                                           \
	do {                                                                                \
		enum proto_error got_ = (call);                                             \
		enum proto_error want_ = (expected);                                        \
		if (got_ != want_)                                                          \
			check_failed(__FILE__, __LINE__, #call,                             \
				     fmt ": got %s (last error: '%s'), expected %s",        \
				     ##__VA_ARGS__, proto_error_code(got_),                 \
				     lifecycle_error(lc), proto_error_code(want_));         \
		if (want_ != PROTO_OK)                                                      \
			CHECK(lifecycle_error(lc)[0] != '\0',                               \
			      fmt ": failed with %s but left no error message", ##__VA_ARGS__, \
			      proto_error_code(want_));                                     \
	} while (0)

#endif
