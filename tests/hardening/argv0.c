/* Runs a program with an empty argv (argc 0), as a hostile caller could. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *none[] = { NULL };
	char *env[] = { NULL };

	if (argc != 2) {
		fprintf(stderr, "usage: kc-argv0 PROGRAM\n");
		return 2;
	}
	execve(argv[1], none, env);
	perror("execve");
	return 127;
}
