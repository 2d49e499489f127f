// Command hello is the cold-start baseline of make bench: the smallest aws-lambda-go function,
// built with the same flags as rollcall's functions.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "hello", nil })
}
