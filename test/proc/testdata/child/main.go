// Command child is the process that package proc's tests start: it logs what it is asked to and
// then behaves as the first argument says.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: child serve|ignore-term|exit|long-line")
		os.Exit(2)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Fprintf(os.Stderr, "level=INFO msg=\"child started\" pid=%d\n", os.Getpid())
	fmt.Println("level=INFO msg=\"on stdout\"")
	switch os.Args[1] {
	case "serve":
		<-term
		fmt.Fprintln(os.Stderr, "level=INFO msg=\"stopping cleanly\"")
	case "ignore-term":
		for range term {
			fmt.Fprintln(os.Stderr, "level=INFO msg=\"SIGTERM ignored\"")
		}
	case "exit":
		fmt.Fprintln(os.Stderr, "level=ERROR msg=\"giving up\"")
		os.Exit(3)
	case "long-line":
		// Past the reader's 1 MiB limit, then more than a pipe holds: a reader that stopped
		// reading would leave the child blocked here.
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 2<<20))
		fmt.Fprintln(os.Stderr, strings.Repeat("y", 1<<20))
		fmt.Fprintln(os.Stderr, "level=INFO msg=done")
	}
}
