// The API docs page: Swagger UI on this app's own OpenAPI schema. An external script rather
// than inline, so the page's Content-Security-Policy needs no 'unsafe-inline' for scripts.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null, // the default badge asks a public validator about the schema: nothing leaves
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
