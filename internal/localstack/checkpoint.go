package localstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkpoint is one consumer's position in a stream, kept in a file so a restarted runner
// resumes after the last record it delivered instead of replaying the stream or skipping to
// its end (Lambda's event source mapping keeps the same state on its side).
type checkpoint struct {
	path string

	StreamArn string                 `json:"streamArn"`
	Shards    map[string]*shardState `json:"shards"`
}

type shardState struct {
	// Seq is the sequence number of the last record delivered; "" = none yet.
	Seq string `json:"seq,omitempty"`
	// Done: the shard is closed and every record of it was delivered.
	Done bool `json:"done,omitempty"`
}

// loadCheckpoint reads path, starting afresh if it is missing or was written for another stream
// (the table was recreated).
func loadCheckpoint(path, streamArn string) (*checkpoint, error) {
	cp := &checkpoint{path: path, StreamArn: streamArn, Shards: map[string]*shardState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return nil, err
	}
	var saved checkpoint
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w (delete it to start over)", path, err)
	}
	if saved.StreamArn != streamArn || saved.Shards == nil {
		return cp, nil
	}
	cp.Shards = saved.Shards
	return cp, nil
}

func (c *checkpoint) shard(id string) *shardState {
	s, ok := c.Shards[id]
	if !ok {
		s = &shardState{}
		c.Shards[id] = s
	}
	return s
}

// save writes the checkpoint atomically (temp file + rename), so a crash never leaves half a file.
func (c *checkpoint) save() error {
	if c.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}
