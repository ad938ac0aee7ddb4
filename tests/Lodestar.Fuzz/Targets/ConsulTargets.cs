using System.Net;
using Lodestar.Consul;
using Lodestar.Consul.Discovery.Internal;
using Lodestar.Consul.Internal;
using Lodestar.Endpoints;

namespace Lodestar.Fuzz.Targets;

internal static class ConsulTargets
{
    /// <summary>
    /// The body of <c>GET /v1/health/service/:service</c>, read through the Consul client as an agent's answer, then
    /// each entry turned into an endpoint as the source does.
    /// </summary>
    public static readonly FuzzTarget Health = new(
        "consul-health",
        "Consul /v1/health/service answers (JSON) and their conversion to endpoints",
        static input =>
        {
            var options = new ConsulOptions { Address = "http://127.0.0.1:8500" };
            var api = new ConsulApi(new FixedAnswer(input, static response => response.Headers.Add("X-Consul-Index", "7")), new FixedOptions<ConsulOptions>(options));
            api.GetHealthServiceAsync("orders", 0, (_, entry) =>
            {
                if (entry is { Problem: null })
                {
                    ConsulEndpointSource.TryConvert(entry, options, out DiscoveredEndpoint? _, out string? _);
                }
            }, CancellationToken.None).GetAwaiter().GetResult();
        },
        typeof(ConsulException));
}

/// <summary>An HTTP client factory whose every client answers 200 with the same body.</summary>
internal sealed class FixedAnswer(byte[] body, Action<HttpResponseMessage>? decorate = null) : HttpMessageHandler, IHttpClientFactory
{
    public HttpClient CreateClient(string name) => new(this, disposeHandler: false);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body), RequestMessage = request };
        response.Content.Headers.ContentType = new("application/json");
        decorate?.Invoke(response);
        return Task.FromResult(response);
    }
}

/// <summary>Options that never change.</summary>
internal sealed class FixedOptions<T>(T value) : Microsoft.Extensions.Options.IOptionsMonitor<T>
{
    public T CurrentValue => value;

    public T Get(string? name) => value;

    public IDisposable? OnChange(Action<T, string?> listener) => null;
}
