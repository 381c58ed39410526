/* `pam-kubeconfig eks-token`: `aws eks get-token` for an admin or kubectl,
 * with region, endpoints and credentials found the way awscli finds them. It
 * runs as whoever calls it, and is the one command that reads the environment. */
#ifndef KC_ADMIN_EKS_CLI_H
#define KC_ADMIN_EKS_CLI_H

/* argv[0] is "eks-token"; it parses its own options. */
int kc_cmd_eks_token(int argc, char **argv);

#endif
