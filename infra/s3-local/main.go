// Command s3-local is the local stack's S3: gofakes3 (the S3 API in Go) over its in-memory
// backend, on 127.0.0.1. The local stack builds it into .local/bin and starts it like DynamoDB
// Local, so it needs no JVM, no Python and no Docker. Uploads are kept for the life of the
// process only (they are a few minutes' staging for roster jobs).
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	port := flag.Int("port", 9000, "port on 127.0.0.1")
	flag.Parse()
	faker := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false), gofakes3.WithTimeSkewLimit(time.Hour))
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)), Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("s3-local listening on http://%s", srv.Addr)
	log.Fatal(srv.ListenAndServe())
}
