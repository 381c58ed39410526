/* Diagnostics on stderr, audit lines to syslog (LOG_AUTHPRIV). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static bool debug_on;

void kc_log_init(bool debug)
{
	debug_on = debug;
	openlog("pam-kubeconfig", LOG_PID, LOG_AUTHPRIV);
}

static void vsay(const char *level, const char *fmt, va_list ap)
{
	fprintf(stderr, "pam-kubeconfig: %s", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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

	if (!debug_on)
		return;
	va_start(ap, fmt);
	vsay("debug: ", fmt, ap);
	va_end(ap);
}

void kc_audit(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsyslog(LOG_AUTHPRIV | LOG_INFO, fmt, ap);
	va_end(ap);
}
