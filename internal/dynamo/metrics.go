package dynamo

import (
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Metrics counts what the store asks of DynamoDB: requests and the capacity they consumed
// (from ReturnConsumedCapacity), split into the table's and the indexes' write units.
type Metrics struct {
	Requests        atomic.Int64
	readMilli       atomic.Int64
	tableWriteMilli atomic.Int64
	indexWriteMilli atomic.Int64
}

// Snapshot is a copy of the counters.
type MetricsSnapshot struct {
	Requests        int64   `json:"requests"`
	ReadUnits       float64 `json:"read_units"`
	TableWriteUnits float64 `json:"table_write_units"`
	IndexWriteUnits float64 `json:"index_write_units"`
}

// WriteUnits is the total of table and index write units.
func (m MetricsSnapshot) WriteUnits() float64 { return m.TableWriteUnits + m.IndexWriteUnits }

// Sub is m - o.
func (m MetricsSnapshot) Sub(o MetricsSnapshot) MetricsSnapshot {
	return MetricsSnapshot{m.Requests - o.Requests, m.ReadUnits - o.ReadUnits, m.TableWriteUnits - o.TableWriteUnits, m.IndexWriteUnits - o.IndexWriteUnits}
}

// Snapshot reads the counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	return MetricsSnapshot{Requests: m.Requests.Load(), ReadUnits: float64(m.readMilli.Load()) / 1000,
		TableWriteUnits: float64(m.tableWriteMilli.Load()) / 1000, IndexWriteUnits: float64(m.indexWriteMilli.Load()) / 1000}
}

func (m *Metrics) read(cc ...types.ConsumedCapacity) {
	m.Requests.Add(1)
	for _, c := range cc {
		m.readMilli.Add(int64(aws.ToFloat64(c.CapacityUnits) * 1000))
	}
}

func (m *Metrics) write(cc ...types.ConsumedCapacity) {
	m.Requests.Add(1)
	for _, c := range cc {
		total := aws.ToFloat64(c.CapacityUnits)
		table := total
		if c.Table != nil {
			table = aws.ToFloat64(c.Table.CapacityUnits)
		}
		m.tableWriteMilli.Add(int64(table * 1000))
		m.indexWriteMilli.Add(int64((total - table) * 1000))
	}
}
