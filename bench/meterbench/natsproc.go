package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// serveNATSFlag makes this binary a NATS server child: it runs the same
// embedded server (same nats-server version and options) on a free
// loopback port, prints its client URL on stdout and stops when its stdin
// closes, so a parent that dies takes it along.
const serveNATSFlag = "-serve-nats"

// serveNATS is the child's whole life; dir holds JetStream data.
func serveNATS(dir string) {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: dir, Port: -1, ReadyTimeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Shutdown()
	srv.WaitForShutdown()
}

// natsProcess is a NATS server running as a child process of the bench:
// the production shape, where the meter, its callers and NATS do not
// share one Go heap and garbage collector.
type natsProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

func startNATSProcess(dir string) *natsProcess {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(self, serveNATSFlag, dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		log.Fatalf("nats child: no client URL: %v", err)
	}
	return &natsProcess{cmd: cmd, stdin: stdin, url: strings.TrimSpace(line)}
}

func (p *natsProcess) stop() {
	_ = p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		log.Printf("nats child: %v", err)
	}
}
