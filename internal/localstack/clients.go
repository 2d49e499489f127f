// Package localstack runs rollcall's AWS pieces on a laptop without Docker: DynamoDB Local and
// the SES v2 emulator as child processes, the table and mail templates created from
// template.yaml, an API Gateway (HTTP API, payload v2) stand-in that invokes the Lambda
// handlers in process, a DynamoDB Streams poller that feeds the stream functions, and a
// scheduler for Schedule events. infra/local (make run) and internal/testenv build on it.
//
// It does not import internal/app: callers hand it a HandlerLookup, so its tests can use fake
// handlers and a half-written app cannot break the stack's own tests.
package localstack

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
)

// Region is the region every local client uses. DynamoDB Local runs with -sharedDb, so the
// region and credentials do not partition its data, but the SDK needs both.
const Region = "us-east-1"

// AWSConfig is the configuration of every local client, the tests' own included. It is built
// by hand rather than with config.LoadDefaultConfig: the local endpoints need no shared config
// files, and a missing credential would otherwise send the SDK probing the EC2 metadata
// service for seconds.
func AWSConfig() aws.Config {
	return aws.Config{
		Region: Region,
		// DynamoDB Local and the emulator accept any non-empty static credentials.
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// NewDynamoDBClient returns a DynamoDB client for a local endpoint (http://127.0.0.1:8000).
func NewDynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// NewStreamsClient returns a DynamoDB Streams client for DynamoDB Local (same endpoint).
func NewStreamsClient(endpoint string) *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(AWSConfig(), func(o *dynamodbstreams.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// NewSESClient returns an SES v2 client for the emulator (http://127.0.0.1:8005).
func NewSESClient(endpoint string) *sesv2.Client {
	return sesv2.NewFromConfig(AWSConfig(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}
