// SPDX-License-Identifier: GPL-2.0
/* migctl entry point; the commands live in migctl.c. */
int migctl_main(int argc, char **argv);

int main(int argc, char **argv)
{
	return migctl_main(argc, argv);
}
