/* Diagnostics on stderr, audit lines to syslog (LOG_AUTHPRIV). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool debug_on;
static struct timespec started;

static long long us_since_start(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - started.tv_sec) * 1000000 + (now.tv_nsec - started.tv_nsec) / 1000;
}

void kc_log_init(bool debug)
{
	debug_on = debug;
	clock_gettime(CLOCK_MONOTONIC, &started);
	openlog("pam-kubeconfig", LOG_PID, LOG_AUTHPRIV);
}

/* One line, one write: refresh's children and the jobs' threads share
 * stderr, and a line written in pieces gets another spliced into it. (A line
 * longer than the buffer is cut; no message comes near it.) */
static void vsay(const char *level, const char *fmt, va_list ap)
{
	char line[8192];
	int head = snprintf(line, sizeof(line), "pam-kubeconfig: %s", level);
	size_t room = sizeof(line) - (size_t)head - 1; /* the newline's place kept */
	int body = vsnprintf(line + head, room, fmt, ap);
	size_t len = (size_t)head + (body < 0 ? 0 : (size_t)body < room ? (size_t)body : room - 1);

	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void kc_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("error: ", fmt, ap);
	va_end(ap);
}

void kc_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("warning: ", fmt, ap);
	va_end(ap);
}

void kc_debug(const char *fmt, ...)
{
	va_list ap;
	char level[40];
	long long us;

	if (!debug_on)
		return;
	us = us_since_start();

	snprintf(level, sizeof(level), "debug: +%lld.%03lld ms: ", us / 1000, us % 1000);
	va_start(ap, fmt);
	vsay(level, fmt, ap);
	va_end(ap);
}

void kc_audit(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsyslog(LOG_AUTHPRIV | LOG_INFO, fmt, ap);
	va_end(ap);
}
