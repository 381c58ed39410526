// kc-clientgo: a small client-go program that loads the kubeconfig the standard
// way (clientcmd: KUBECONFIG with several files, then ~/.kube/config) and leaves
// a tokenFile to client-go itself, as kubectl, k9s and controllers do.
//
//	kc-clientgo whoami                      prints the SelfSubjectReview username
//	kc-clientgo watch [-n NS] [-every 10s]  holds a watch on the pods of NS and
//	                                        makes a SelfSubjectReview every period,
//	                                        one line per event and per request,
//	                                        until killed
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var out sync.Mutex

// say prints one line, stamped with the wall clock (RFC 3339, milliseconds).
func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Printf("%s %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
}

// status is the HTTP outcome of an API error: its code when the server answered.
func status(err error) string {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return fmt.Sprintf("%d", s.Status().Code)
	}
	return "none"
}

func load(agent string) (*kubernetes.Clientset, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	// A stable user agent picks this program's requests out of the audit log.
	cfg.UserAgent = agent + " " + rest.DefaultKubernetesUserAgent()
	return kubernetes.NewForConfig(cfg)
}

func whoami(ctx context.Context, cs *kubernetes.Clientset) (string, error) {
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

// watchPods holds a watch on the pods of ns and opens a new one whenever the
// server ends it, as an informer would.
func watchPods(ctx context.Context, cs *kubernetes.Clientset, ns string) {
	for ctx.Err() == nil {
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			say("watch error status=%s %v", status(err), err)
			time.Sleep(time.Second)
			continue
		}
		say("watch started namespace=%s", ns)
		for ev := range w.ResultChan() {
			name := ""
			if m, ok := ev.Object.(metav1.Object); ok {
				name = m.GetName()
			}
			say("event %s %s", ev.Type, name)
		}
		say("watch ended")
	}
}

func runWatch(args []string) int {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	ns := fs.String("n", "default", "namespace whose pods are watched")
	every := fs.Duration("every", 10*time.Second, "time between two requests")
	_ = fs.Parse(args)
	cs, err := load("kc-clientgo/watch")
	if err != nil {
		fmt.Fprintf(os.Stderr, "kc-clientgo: %v\n", err)
		return 1
	}
	ctx := context.Background()
	go watchPods(ctx, cs, *ns)
	for n := 1; ; n++ {
		user, err := whoami(ctx, cs)
		if err != nil {
			say("request %d selfsubjectreview status=%s error=%q", n, status(err), err.Error())
		} else {
			say("request %d selfsubjectreview status=%d user=%s", n, http.StatusCreated, user)
		}
		time.Sleep(*every)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kc-clientgo whoami | kc-clientgo watch [-n NS] [-every 10s]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "whoami":
		cs, err := load("kc-clientgo/whoami")
		if err == nil {
			var user string
			if user, err = whoami(context.Background(), cs); err == nil {
				fmt.Println(user)
				return
			}
		}
		fmt.Fprintf(os.Stderr, "kc-clientgo: %v\n", err)
		os.Exit(1)
	case "watch":
		os.Exit(runWatch(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "kc-clientgo: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
