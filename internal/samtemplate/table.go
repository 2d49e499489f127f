package samtemplate

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableSpec is an AWS::DynamoDB::Table turned into what the DynamoDB API needs to create it.
type TableSpec struct {
	LogicalID string
	// Input creates the table (a fresh value on every call, so callers may change it).
	Input *dynamodb.CreateTableInput
	// TTLAttribute is the TimeToLiveSpecification attribute when TTL is enabled, else "".
	// CreateTable cannot enable TTL; the caller follows up with UpdateTimeToLive.
	TTLAttribute string
}

// Table builds the CreateTableInput of the template's only AWS::DynamoDB::Table, named
// tableName (the template's TableName, if any, is ignored: local and test tables get their own).
func (t *Template) Table(tableName string) (*TableSpec, error) {
	tables := t.ResourcesOfType(TypeTable)
	if len(tables) != 1 {
		return nil, fmt.Errorf("samtemplate: want exactly one %s, found %d", TypeTable, len(tables))
	}
	return t.TableByID(tables[0].LogicalID, tableName)
}

// TableByID is Table for a given logical id.
func (t *Template) TableByID(logicalID, tableName string) (*TableSpec, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeTable {
		return nil, fmt.Errorf("samtemplate: no %s %q", TypeTable, logicalID)
	}
	// Resolve only the properties used here: others (Tags, TableName with ${AWS::StackName},
	// KMS keys) may reference things that have no local value.
	used := map[string]any{}
	for _, k := range []string{"BillingMode", "AttributeDefinitions", "KeySchema",
		"GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput",
		"StreamSpecification", "TimeToLiveSpecification"} {
		if v, ok := r.Properties[k]; ok {
			used[k] = v
		}
	}
	rv, err := t.Resolve(used, nil)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: table %s: %w", logicalID, err)
	}
	p := asMap(rv)
	in := &dynamodb.CreateTableInput{TableName: aws.String(tableName)}

	// CloudFormation's default billing mode is PROVISIONED.
	in.BillingMode = types.BillingModeProvisioned
	if bm := asString(p["BillingMode"]); bm != "" {
		in.BillingMode = types.BillingMode(bm)
	}
	provisioned := in.BillingMode == types.BillingModeProvisioned
	if provisioned {
		if in.ProvisionedThroughput, err = throughput(p["ProvisionedThroughput"]); err != nil {
			return nil, fmt.Errorf("samtemplate: table %s: %w", logicalID, err)
		}
	}

	for _, a := range asList(p["AttributeDefinitions"]) {
		am := asMap(a)
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(asString(am["AttributeName"])),
			AttributeType: types.ScalarAttributeType(asString(am["AttributeType"])),
		})
	}
	in.KeySchema = keySchema(p["KeySchema"])
	if len(in.KeySchema) == 0 {
		return nil, fmt.Errorf("samtemplate: table %s has no KeySchema", logicalID)
	}

	for _, g := range asList(p["GlobalSecondaryIndexes"]) {
		gm := asMap(g)
		gsi := types.GlobalSecondaryIndex{
			IndexName:  aws.String(asString(gm["IndexName"])),
			KeySchema:  keySchema(gm["KeySchema"]),
			Projection: projection(gm["Projection"]),
		}
		if provisioned {
			if gsi.ProvisionedThroughput, err = throughput(gm["ProvisionedThroughput"]); err != nil {
				return nil, fmt.Errorf("samtemplate: table %s index %s: %w", logicalID, *gsi.IndexName, err)
			}
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, l := range asList(p["LocalSecondaryIndexes"]) {
		lm := asMap(l)
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(asString(lm["IndexName"])),
			KeySchema:  keySchema(lm["KeySchema"]),
			Projection: projection(lm["Projection"]),
		})
	}

	if ss := asMap(p["StreamSpecification"]); ss != nil {
		if vt := asString(ss["StreamViewType"]); vt != "" {
			in.StreamSpecification = &types.StreamSpecification{
				StreamEnabled:  aws.Bool(true),
				StreamViewType: types.StreamViewType(vt),
			}
		}
	}
	spec := &TableSpec{LogicalID: logicalID, Input: in}
	if ttl := asMap(p["TimeToLiveSpecification"]); ttl != nil && ttl["Enabled"] == true {
		spec.TTLAttribute = asString(ttl["AttributeName"])
	}
	// SSESpecification and PointInTimeRecoverySpecification have no local meaning.
	return spec, nil
}

func keySchema(v any) []types.KeySchemaElement {
	var out []types.KeySchemaElement
	for _, k := range asList(v) {
		km := asMap(k)
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(asString(km["AttributeName"])),
			KeyType:       types.KeyType(asString(km["KeyType"])),
		})
	}
	return out
}

func projection(v any) *types.Projection {
	pm := asMap(v)
	p := &types.Projection{ProjectionType: types.ProjectionTypeAll}
	if pt := asString(pm["ProjectionType"]); pt != "" {
		p.ProjectionType = types.ProjectionType(pt)
	}
	for _, a := range asList(pm["NonKeyAttributes"]) {
		p.NonKeyAttributes = append(p.NonKeyAttributes, asString(a))
	}
	return p
}

func throughput(v any) (*types.ProvisionedThroughput, error) {
	m := asMap(v)
	if m == nil {
		return nil, fmt.Errorf("BillingMode PROVISIONED needs ProvisionedThroughput")
	}
	r, err1 := scalarString(m["ReadCapacityUnits"])
	w, err2 := scalarString(m["WriteCapacityUnits"])
	rn, err3 := strconv.ParseInt(r, 10, 64)
	wn, err4 := strconv.ParseInt(w, 10, 64)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return nil, fmt.Errorf("ProvisionedThroughput: %w", err)
		}
	}
	return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(rn), WriteCapacityUnits: aws.Int64(wn)}, nil
}
