package restapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of the REST API, served at /api/openapi.json.
// A test checks that every route of Routes appears in it with its method.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3 document of the REST API.
func OpenAPI() json.RawMessage { return json.RawMessage(openAPIDocument) }

// openAPI answers GET /api/openapi.json; it needs no API key.
func (a *api) openAPI(context.Context, *call) (int, any, error) {
	return http.StatusOK, OpenAPI(), nil
}
