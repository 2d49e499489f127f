// Command local is rollcall's Docker-free local stack (make run, make token, make invoke,
// make test). Everything it runs is derived from template.yaml.
//
//	go run ./infra/local run                       API on 127.0.0.1:$PORT with DynamoDB Local and the SES emulator
//	go run ./infra/local token USERNAME [--admin] [--email E]
//	go run ./infra/local invoke FUNCTION [EVENTFILE]
//	go run ./infra/local testenv -- CMD [ARGS...]   run CMD with one DynamoDB Local + emulator for all its tests
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/rollcall/rollcall/internal/emf"
)

const usage = `usage: go run ./infra/local <command>

  run                              start DynamoDB Local, the SES emulator and the API gateway
                                   (PORT=3000, DYNAMODB_PORT=8000, SES_PORT=8005, TABLE_NAME=rollcall-local)
  token USERNAME [--admin] [--email E]
                                   print a local bearer token (HS256, JWT_SECRET)
  invoke FUNCTION [EVENTFILE]      invoke one function in process with an event (see events/);
                                   a scheduled function needs no event file
  testenv [--] CMD [ARGS...]       run CMD with ROLLCALL_TEST_DYNAMODB_ENDPOINT and
                                   ROLLCALL_TEST_SES_ENDPOINT pointing at fresh in-memory services
`

func main() {
	start := time.Now()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	// Embedded-metric lines go to stdout in Lambda (CloudWatch reads them from the log);
	// here stdout is make invoke's answer and make token's token, so they join the logs.
	emf.SetOutput(os.Stderr)
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(start, args)
	case "token":
		err = cmdToken(args)
	case "invoke":
		err = cmdInvoke(args)
	case "testenv":
		os.Exit(cmdTestenv(args))
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}
