// Package e2e holds end-to-end tests of rollcall's invitation and mail flows: the real Lambda
// handlers behind the local API Gateway stand-in, DynamoDB Local with its stream feeding the
// mailer and audit functions, the SES v2 emulator, and a headless browser. The tests live in
// _test files; this package has no code of its own.
package e2e
