/*
 * wl_shared_tables: a child cloned without CLONE_THREAD that shares a table
 * with its parent, chosen by WL_SHARE (default files):
 *   files  CLONE_FILES: an fd the child opens is open in the parent
 *   fs     CLONE_FS: the child's chdir moves the parent too
 *   vm     CLONE_VM | CLONE_SIGHAND: a variable the child sets is set in the parent
 * On SIGTERM the parent checks that the sharing still holds, kills the child and
 * reports. ccr cannot restore such sharing yet: a dump must refuse the tree by
 * name and leave both running.
 *
 * Self test: the parent undoes what the child did (closes the fd, goes back to
 * its directory, clears the variable).
 */
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "workload.h"

static volatile int *child_fd;
static volatile int vm_flag;
static char dir[4096];

static int child_main(void *arg)
{
	const char *share = arg;

	if (!strcmp(share, "files"))
		*child_fd = open("/dev/null", O_RDONLY);
	else if (!strcmp(share, "fs"))
		(void)!chdir(dir);
	else
		vm_flag = 42;
	for (;;)
		pause();
	return 0;
}

static int holds(const char *share)
{
	char cwd[4096] = "";

	if (!strcmp(share, "files"))
		return *child_fd >= 0 && fcntl(*child_fd, F_GETFD) >= 0;
	if (!strcmp(share, "fs"))
		return getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, dir);
	return vm_flag == 42;
}

int main(int argc, char **argv)
{
	const char *share = getenv("WL_SHARE") ? getenv("WL_SHARE") : "files";
	int flags = SIGCHLD;
	char *stack;
	pid_t child;

	snprintf(dir, sizeof(dir), "%s", wl_scratch(argc, argv));
	wl_install_term();
	child_fd = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	stack = malloc(1 << 20);
	if (child_fd == MAP_FAILED || !stack)
		WL_DIE("mmap/malloc");
	*child_fd = -1;
	if (!strcmp(share, "files"))
		flags |= CLONE_FILES;
	else if (!strcmp(share, "fs"))
		flags |= CLONE_FS;
	else if (!strcmp(share, "vm"))
		flags |= CLONE_VM | CLONE_SIGHAND;
	else
		WL_DIE("WL_SHARE=%s: files, fs or vm", share);
	child = clone(child_main, stack + (1 << 20), flags, (void *)share);
	if (child < 0)
		WL_DIE("clone");
	for (int i = 0; i < 200 && !holds(share); i++)
		usleep(10000);
	if (!holds(share))
		WL_DIE("the child's change (%s) did not reach the parent", share);
	wl_ready();
	if (wl_selftest_break()) {
		if (!strcmp(share, "files"))
			close(*child_fd);
		else if (!strcmp(share, "fs"))
			(void)!chdir("/");
		else
			vm_flag = 0;
	}
	wl_wait_for_term();
	WL_CHECK(holds(share), "the parent no longer shares the child's %s", share);
	kill(child, SIGKILL);
	waitpid(child, NULL, __WALL);
	return wl_finish();
}
