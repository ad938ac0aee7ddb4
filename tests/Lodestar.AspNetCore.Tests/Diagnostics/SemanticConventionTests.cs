using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Lodestar.Diagnostics;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Diagnostics;

/// <summary>The HTTP client semantic-convention attributes on the attempt span and the request and attempt instruments.</summary>
[Collection(ActivityListenerCollection.Name)]
public sealed class SemanticConventionTests
{
    [Fact]
    public async Task SendAsync_RetriedAfterRefusedConnection_SpansAndInstrumentsCarryHttpClientAttributes()
    {
        // Arrange
        using var spans = new SpanRecorder("Lodestar.Tests.Semconv");
        await using var backend = await TestBackend.StartAsync("good");
        var refusedPort = FreePort();
        await using var provider = BuildClient($"127.0.0.1:{refusedPort}", backend.Address);
        using var meters = new Measurements(provider.GetRequiredService<IMeterFactory>());
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        // Act: round robin sends one of the first two requests to the refused endpoint first.
        Activity? retried = null;
        for (var i = 0; i < 10 && retried is null; i++)
        {
            using var parent = spans.Caller.StartActivity("caller")!;
            using var response = await client.GetAsync("http://orders/x");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            parent.Stop();
            if (spans.ChildrenOf(parent).Count == 2)
            {
                retried = parent;
            }
        }

        // Assert: the spans.
        Assert.NotNull(retried);
        var attempts = spans.ChildrenOf(retried).OrderBy(a => (int)a.GetTagItem("lodestar.attempt")!).ToList();
        Assert.Equal("127.0.0.1", attempts[0].GetTagItem("server.address"));
        Assert.Equal(refusedPort, attempts[0].GetTagItem("server.port"));
        Assert.Equal("GET", attempts[0].GetTagItem("http.request.method"));
        Assert.Equal("http", attempts[0].GetTagItem("url.scheme"));
        Assert.Equal("connect_failure", attempts[0].GetTagItem("error.type"));
        Assert.Null(attempts[0].GetTagItem("http.request.resend_count"));
        Assert.Null(attempts[0].GetTagItem("http.response.status_code"));
        Assert.Equal(backend.Port, attempts[1].GetTagItem("server.port"));
        Assert.Equal(1, attempts[1].GetTagItem("http.request.resend_count"));
        Assert.Equal(200, attempts[1].GetTagItem("http.response.status_code"));
        Assert.Null(attempts[1].GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Unset, attempts[1].Status);

        // Assert: the instruments.
        var refused = Assert.Single(meters.For("lodestar.client.attempts"), m => Equals(m["server.port"], refusedPort));
        Assert.Equal("127.0.0.1", refused["server.address"]);
        Assert.Equal("connect_failure", refused["error.type"]);
        Assert.Equal("GET", refused["http.request.method"]);
        Assert.Equal("http", refused["url.scheme"]);
        Assert.Contains(meters.For("lodestar.client.attempt.duration"), m => Equals(m["server.port"], backend.Port) && Equals(m.GetValueOrDefault("http.request.resend_count"), 1)
            && Equals(m["http.response.status_code"], 200) && !m.ContainsKey("error.type"));
        var requests = meters.For("lodestar.client.requests");
        Assert.All(requests, m =>
        {
            Assert.Equal("orders", m["server.address"]);
            Assert.Equal(80, m["server.port"]);
            Assert.Equal("http", m["url.scheme"]);
            Assert.Equal("GET", m["http.request.method"]);
            Assert.Equal(200, m["http.response.status_code"]);
            Assert.False(m.ContainsKey("error.type"));
        });
        Assert.Single(requests, m => Equals(m.GetValueOrDefault("http.request.resend_count"), 1));
        Assert.Contains(meters.For("lodestar.client.request.duration"), m => Equals(m.GetValueOrDefault("http.request.resend_count"), 1));
    }

    [Fact]
    public async Task SendAsync_ServerError_ErrorTypeIsTheStatusCodeAndSpanIsAnError()
    {
        // Arrange
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == LodestarDiagnostics.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var backend = await TestBackend.StartAsync("failing");
        backend.Status = 503;
        await using var provider = BuildClient(backend.Address);
        using var meters = new Measurements(provider.GetRequiredService<IMeterFactory>());
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        // Act
        using var request = new HttpRequestMessage(new HttpMethod("PURGE"), "http://orders/x");
        using var response = await client.SendAsync(request);

        // Assert
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var span = Assert.Single(stopped, a => Equals(a.GetTagItem("server.port"), backend.Port));
        Assert.Equal("503", span.GetTagItem("error.type"));
        Assert.Equal(503, span.GetTagItem("http.response.status_code"));
        Assert.Equal("_OTHER", span.GetTagItem("http.request.method"));
        Assert.Equal("PURGE", span.GetTagItem("http.request.method_original"));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        var request1 = Assert.Single(meters.For("lodestar.client.requests"));
        Assert.Equal("503", request1["error.type"]);
        Assert.Equal("_OTHER", request1["http.request.method"]);
        Assert.Equal("server_error", request1["lodestar.outcome"]);
    }

    [Fact]
    public async Task SendAsync_SchemeListWithoutDefaultPort_RequestHasSchemeButNoServerPort()
    {
        // Arrange
        await using var backend = await TestBackend.StartAsync("plain");
        await using var provider = BuildClient(backend.Address);
        using var meters = new Measurements(provider.GetRequiredService<IMeterFactory>());
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        // Act: https is tried first and the plain-http backend fails its handshake; the request's tags are what matter.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("https+http://orders/x"));

        // Assert: the logical URI has no port to report; the attempt reports the endpoint's.
        var request = Assert.Single(meters.For("lodestar.client.requests"));
        Assert.Equal("https+http", request["url.scheme"]);
        Assert.Equal("orders", request["server.address"]);
        Assert.False(request.ContainsKey("server.port"));
        var attempt = Assert.Single(meters.For("lodestar.client.attempts"));
        Assert.Equal(backend.Port, attempt["server.port"]);
        Assert.Equal("https", attempt["url.scheme"]);
    }

    private static ServiceProvider BuildClient(params string[] endpoints)
    {
        var registry = new MutableConfigurationSource();
        registry.Provider.SetEndpoints("orders", endpoints);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Add(registry).Build());
        services.AddHttpClient("orders").AddLodestar();
        return services.BuildServiceProvider();
    }

    private static int FreePort()
    {
        // Bind and release: nothing listens there afterwards, so connecting is refused at once.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Every measurement of the container's Lodestar meter, with its tags.</summary>
    private sealed class Measurements : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Name, Dictionary<string, object?> Tags)> _seen = new();

        public Measurements(IMeterFactory factory)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == LodestarDiagnostics.Name && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((i, _, tags, _) => Add(i, tags));
            _listener.SetMeasurementEventCallback<double>((i, _, tags, _) => Add(i, tags));
            _listener.Start();
        }

        public List<Dictionary<string, object?>> For(string name) => _seen.Where(m => m.Name == name).Select(m => m.Tags).ToList();

        public void Dispose() => _listener.Dispose();

        private void Add(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var copy = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                copy[tag.Key] = tag.Value;
            }

            _seen.Enqueue((instrument.Name, copy));
        }
    }
}
