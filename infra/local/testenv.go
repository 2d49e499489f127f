package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/internal/localstack"
	"github.com/rollcall/rollcall/internal/testenv"
)

// cmdTestenv runs a command (go test ./...) with one in-memory DynamoDB Local, one SES
// emulator, one ElasticMQ and one S3 emulator for all of it, on free ports, exported as
// ROLLCALL_TEST_DYNAMODB_ENDPOINT, ROLLCALL_TEST_SES_ENDPOINT, ROLLCALL_TEST_SQS_ENDPOINT and
// ROLLCALL_TEST_S3_ENDPOINT. Without it every test binary starts its own pair, which on a
// small machine costs a JVM per package. It returns the command's exit code.
func cmdTestenv(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: testenv [--] CMD [ARGS...]")
		return 2
	}
	log := newLogger()
	var services []*localstack.Service
	defer func() {
		for _, s := range services {
			_ = s.Stop()
		}
	}()

	// ElasticMQ and the S3 emulator start beside DynamoDB Local and the SES emulator (a JVM
	// each: side by side they take the time of the slowest).
	type jobServices struct {
		s   *localstack.JobServices
		err error
	}
	jobsDone := make(chan jobServices, 1)
	if os.Getenv(testenv.SQSEndpointEnv) == "" || os.Getenv(testenv.S3EndpointEnv) == "" {
		dir, err := os.MkdirTemp("", "rollcall-testenv-jobs-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			js, err := localstack.StartJobServices(ctx, dir)
			jobsDone <- jobServices{js, err}
		}()
	} else {
		jobsDone <- jobServices{}
	}
	if os.Getenv(testenv.DynamoDBEndpointEnv) == "" || os.Getenv(testenv.SESEndpointEnv) == "" {
		dir, err := os.MkdirTemp("", "rollcall-testenv-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		eph, err := localstack.StartEphemeral(ctx, dir, os.Getenv(testenv.DynamoDBEndpointEnv) == "", os.Getenv(testenv.SESEndpointEnv) == "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			return 1
		}
		services = append(services, eph.Services()...)
		if eph.DynamoDB != nil {
			os.Setenv(testenv.DynamoDBEndpointEnv, eph.DynamoDB.Endpoint)
		}
		if eph.SES != nil {
			os.Setenv(testenv.SESEndpointEnv, eph.SES.Endpoint)
		}
	}
	if js := <-jobsDone; js.err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", js.err)
		return 1
	} else if js.s != nil {
		services = append(services, js.s.Services()...)
		os.Setenv(testenv.SQSEndpointEnv, js.s.SQS.Endpoint)
		os.Setenv(testenv.S3EndpointEnv, js.s.S3.Endpoint)
	}
	log.Info("test services", "dynamodb", os.Getenv(testenv.DynamoDBEndpointEnv), "ses", os.Getenv(testenv.SESEndpointEnv),
		"sqs", os.Getenv(testenv.SQSEndpointEnv), "s3", os.Getenv(testenv.S3EndpointEnv))

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The command shares our process group, so Ctrl-C reaches it directly; we only outlive it
	// to stop the services. SIGTERM (from a CI runner) is passed on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM {
				_ = cmd.Process.Signal(s)
			}
		}
	}()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.ExitCode() < 0 {
			return 1 // killed by a signal
		}
		return exit.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
}
