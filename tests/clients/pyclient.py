#!/usr/bin/env python3
"""The Python `kubernetes` client (PyPI) as a user runs it: loads the kubeconfig
its standard way (config.load_kube_config: KUBECONFIG, several files allowed,
else ~/.kube/config) and prints the SelfSubjectReview username.

    pyclient.py                        one review, prints the username
    pyclient.py --every S --count N    N reviews S seconds apart from one loaded
                                       configuration, one line each with the
                                       HTTP outcome (what a long-running script sees)
"""
import argparse
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def review(api):
    body = client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    return api.create_self_subject_review(body).status.user_info.username


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=float, default=0)
    ap.add_argument("--count", type=int, default=1)
    args = ap.parse_args()
    config.load_kube_config()
    api = client.AuthenticationV1Api()
    if args.count == 1 and not args.every:
        try:
            print(review(api))
        except ApiException as e:
            print(f"pyclient: status={e.status}", file=sys.stderr)
            return 1
        except Exception as e:  # noqa: BLE001 - its message may quote the Authorization header
            print(f"pyclient: {type(e).__name__}", file=sys.stderr)
            return 1
        return 0
    for n in range(1, args.count + 1):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            print(f"{stamp} request {n} status=201 user={review(api)}", flush=True)
        except ApiException as e:
            print(f"{stamp} request {n} status={e.status}", flush=True)
        if n < args.count:
            time.sleep(args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
