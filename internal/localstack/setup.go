package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// TableDriftError means an existing table's key schema or local indexes no longer match
// template.yaml; the local data has to be recreated.
type TableDriftError struct {
	Table       string
	Differences []string
}

func (e *TableDriftError) Error() string {
	return fmt.Sprintf("table %s does not match template.yaml (%s) and cannot be changed in place: delete it (for make run: remove .local/data/dynamodb) so it is recreated",
		e.Table, strings.Join(e.Differences, "; "))
}

// TableOption changes how EnsureTable creates a table.
type TableOption func(*tableOptions)

type tableOptions struct{ withoutStream bool }

// WithoutStream creates the table without the template's stream (keys, indexes and TTL stay as
// declared), for tables whose stream nobody reads: tests of the store and the benchmark.
// DynamoDB Local keeps every stream record, also those of deleted tables, and each later write
// slows with their number: on this machine 1,000 writes took 0.9 s on a fresh server and
// 15.6 s after 44,000 streamed writes, and 0.1-0.6 s throughout with streams off. An existing
// table's stream is left as it is.
func WithoutStream() TableOption { return func(o *tableOptions) { o.withoutStream = true } }

// EnsureTable creates tableName from the template's AWS::DynamoDB::Table if it does not exist,
// enables its stream if needed and turns on TTL. It is idempotent. On an existing table it
// brings the global secondary indexes in line with the template (missing ones are created,
// changed or extra ones rebuilt or dropped: an index is derived data, so nothing is lost);
// a changed table key or local index cannot be fixed in place and is a *TableDriftError.
func EnsureTable(ctx context.Context, client *dynamodb.Client, tpl *samtemplate.Template, tableName string, opts ...TableOption) error {
	spec, err := tpl.Table(tableName)
	if err != nil {
		return err
	}
	var o tableOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.withoutStream {
		spec.Input.StreamSpecification = nil
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = client.CreateTable(ctx, spec.Input)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // inUse: a concurrent EnsureTable won
			return fmt.Errorf("create table %s: %w", tableName, err)
		}
		w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName)}, time.Minute); err != nil {
			return fmt.Errorf("wait for table %s: %w", tableName, err)
		}
	case err != nil:
		return fmt.Errorf("describe table %s: %w", tableName, err)
	default:
		if diffs := tableDrift(spec.Input, desc.Table); len(diffs) > 0 {
			return &TableDriftError{Table: tableName, Differences: diffs}
		}
		if err := reconcileGSIs(ctx, client, spec.Input, desc.Table); err != nil {
			return err
		}
		if ss := spec.Input.StreamSpecification; ss != nil {
			cur := desc.Table.StreamSpecification
			if cur == nil || !aws.ToBool(cur.StreamEnabled) {
				if _, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
					TableName: aws.String(tableName), StreamSpecification: ss,
				}); err != nil {
					return fmt.Errorf("enable stream on %s: %w", tableName, err)
				}
			} else if cur.StreamViewType != ss.StreamViewType {
				return &TableDriftError{Table: tableName, Differences: []string{
					fmt.Sprintf("stream view %s, template %s", cur.StreamViewType, ss.StreamViewType)}}
			}
		}
	}
	if spec.TTLAttribute != "" {
		ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tableName)})
		if err != nil {
			return fmt.Errorf("describe TTL of %s: %w", tableName, err)
		}
		d := ttl.TimeToLiveDescription
		enabled := d != nil && (d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling)
		if !enabled || aws.ToString(d.AttributeName) != spec.TTLAttribute {
			if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
				TableName: aws.String(tableName),
				TimeToLiveSpecification: &types.TimeToLiveSpecification{
					AttributeName: aws.String(spec.TTLAttribute), Enabled: aws.Bool(true),
				},
			}); err != nil {
				return fmt.Errorf("enable TTL on %s: %w", tableName, err)
			}
		}
	}
	return nil
}

// tableDrift lists what cannot change under an existing table: its key schema and its local
// secondary indexes.
func tableDrift(want *dynamodb.CreateTableInput, got *types.TableDescription) []string {
	var diffs []string
	if a, b := keysString(want.KeySchema), keysString(got.KeySchema); a != b {
		diffs = append(diffs, fmt.Sprintf("key %s, template %s", b, a))
	}
	wantIdx := map[string]string{}
	for _, l := range want.LocalSecondaryIndexes {
		wantIdx[aws.ToString(l.IndexName)] = keysString(l.KeySchema) + projString(l.Projection)
	}
	gotIdx := map[string]string{}
	for _, l := range got.LocalSecondaryIndexes {
		gotIdx[aws.ToString(l.IndexName)] = keysString(l.KeySchema) + projString(l.Projection)
	}
	for name, w := range wantIdx {
		if g := gotIdx[name]; g != w {
			diffs = append(diffs, fmt.Sprintf("local index %s is %q, template %q", name, g, w))
		}
	}
	for name := range gotIdx {
		if _, ok := wantIdx[name]; !ok {
			diffs = append(diffs, "local index "+name+" not in the template")
		}
	}
	sort.Strings(diffs)
	return diffs
}

// reconcileGSIs drops global indexes that are not in the template or differ from it (keys,
// projection) and creates the missing ones, one UpdateTable at a time as DynamoDB requires,
// waiting for each to finish.
func reconcileGSIs(ctx context.Context, client *dynamodb.Client, want *dynamodb.CreateTableInput, got *types.TableDescription) error {
	table := aws.ToString(got.TableName)
	wantIdx := map[string]types.GlobalSecondaryIndex{}
	for _, g := range want.GlobalSecondaryIndexes {
		wantIdx[aws.ToString(g.IndexName)] = g
	}
	have := map[string]bool{}
	for _, g := range got.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		w, ok := wantIdx[name]
		if ok && keysString(w.KeySchema)+projString(w.Projection) == keysString(g.KeySchema)+projString(g.Projection) {
			have[name] = true
			continue
		}
		slog.Default().Info("dropping a global index that differs from template.yaml", "table", table, "index", name)
		if _, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:                   aws.String(table),
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Delete: &types.DeleteGlobalSecondaryIndexAction{IndexName: aws.String(name)}}},
		}); err != nil {
			return fmt.Errorf("drop index %s of %s: %w", name, table, err)
		}
		if err := waitIndexes(ctx, client, table); err != nil {
			return err
		}
	}
	attrType := map[string]types.ScalarAttributeType{}
	for _, a := range want.AttributeDefinitions {
		attrType[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	for _, g := range want.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		if have[name] {
			continue
		}
		slog.Default().Info("creating a global index from template.yaml", "table", table, "index", name)
		// Only the new index's key attributes: DynamoDB rejects definitions nothing uses.
		var defs []types.AttributeDefinition
		for _, k := range g.KeySchema {
			defs = append(defs, types.AttributeDefinition{AttributeName: k.AttributeName, AttributeType: attrType[aws.ToString(k.AttributeName)]})
		}
		if _, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            aws.String(table),
			AttributeDefinitions: defs,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection, ProvisionedThroughput: g.ProvisionedThroughput,
			}}},
		}); err != nil {
			return fmt.Errorf("create index %s of %s: %w", name, table, err)
		}
		if err := waitIndexes(ctx, client, table); err != nil {
			return err
		}
	}
	return nil
}

// waitIndexes waits until the table and all its global indexes are ACTIVE (and deleted ones gone).
func waitIndexes(ctx context.Context, client *dynamodb.Client, table string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("wait for indexes of %s: %w", table, err)
		}
		busy := out.Table.TableStatus != types.TableStatusActive
		for _, g := range out.Table.GlobalSecondaryIndexes {
			busy = busy || g.IndexStatus != types.IndexStatusActive
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for indexes of %s: %w", table, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func keysString(ks []types.KeySchemaElement) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return strings.Join(parts, ",")
}

func projString(p *types.Projection) string {
	if p == nil {
		return ""
	}
	attrs := append([]string(nil), p.NonKeyAttributes...)
	sort.Strings(attrs)
	return " " + string(p.ProjectionType) + "[" + strings.Join(attrs, ",") + "]"
}

// EnsureEmailTemplates creates or updates every AWS::SES::Template of the template in SES (the
// emulator keeps templates in memory, so this runs at every start), named for stage
// (rollcall-<stage>-enrolled, ...).
func EnsureEmailTemplates(ctx context.Context, client *sesv2.Client, tpl *samtemplate.Template, stage string) error {
	ets, err := tpl.EmailTemplates(map[string]string{"Stage": stage})
	if err != nil {
		return err
	}
	for _, et := range ets {
		content := &sestypes.EmailTemplateContent{
			Subject: aws.String(et.Subject), Text: aws.String(et.Text), Html: aws.String(et.HTML),
		}
		// Get decides between create and update: the emulator's error bodies do not carry an
		// error code the SDK can map to AlreadyExistsException.
		if _, err := client.GetEmailTemplate(ctx, &sesv2.GetEmailTemplateInput{TemplateName: aws.String(et.Name)}); err == nil {
			_, err = client.UpdateEmailTemplate(ctx, &sesv2.UpdateEmailTemplateInput{
				TemplateName: aws.String(et.Name), TemplateContent: content,
			})
			if err != nil {
				return fmt.Errorf("update mail template %s: %w", et.Name, err)
			}
			continue
		}
		if _, err := client.CreateEmailTemplate(ctx, &sesv2.CreateEmailTemplateInput{
			TemplateName: aws.String(et.Name), TemplateContent: content,
		}); err != nil {
			// Another process (a parallel test binary) may have created it since the Get.
			if _, uerr := client.UpdateEmailTemplate(ctx, &sesv2.UpdateEmailTemplateInput{
				TemplateName: aws.String(et.Name), TemplateContent: content,
			}); uerr != nil {
				return fmt.Errorf("create mail template %s: %w", et.Name, err)
			}
		}
	}
	return nil
}
