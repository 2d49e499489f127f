package samtemplate

import "fmt"

// EmailTemplate is an AWS::SES::Template, evaluated.
type EmailTemplate struct {
	LogicalID string
	Name      string
	Subject   string
	Text      string
	HTML      string
}

// EmailTemplates evaluates every AWS::SES::Template with the given parameter values
// (e.g. {"Stage": "local"} names them rollcall-local-*), in file order.
func (t *Template) EmailTemplates(subs map[string]string) ([]EmailTemplate, error) {
	var out []EmailTemplate
	for _, r := range t.ResourcesOfType(TypeEmailTemplate) {
		tm := asMap(r.Properties["Template"])
		et := EmailTemplate{LogicalID: r.LogicalID}
		for _, f := range []struct {
			key string
			dst *string
		}{{"TemplateName", &et.Name}, {"SubjectPart", &et.Subject}, {"TextPart", &et.Text}, {"HtmlPart", &et.HTML}} {
			s, err := t.ResolveString(tm[f.key], subs)
			if err != nil {
				return nil, fmt.Errorf("samtemplate: %s %s: %w", r.LogicalID, f.key, err)
			}
			*f.dst = s
		}
		// CloudFormation would generate a name, but then nothing could refer to the template.
		if et.Name == "" {
			return nil, fmt.Errorf("samtemplate: %s has no TemplateName", r.LogicalID)
		}
		out = append(out, et)
	}
	return out, nil
}
