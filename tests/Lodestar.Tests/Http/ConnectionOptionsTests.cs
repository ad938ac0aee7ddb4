using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Lodestar.Endpoints;
using Lodestar.Http;
using Lodestar.Http.Internal;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Http;

/// <summary>
/// Per-service <see cref="ConnectionOptions"/>: the connect timeout (shortest among the services of an address) and the
/// cap on a handler's open connections to a service, applied in Lodestar's connect callback.
/// </summary>
public sealed class ConnectionOptionsTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ConnectAsync_ServiceAtItsCap_WaitsUntilOneOfItsConnectionsCloses()
    {
        // Arrange: a listener the kernel accepts connections for; a cap of one connection to "orders".
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(16);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var retirer = Retirer(new FakeTimeProviderClock(), ("orders", new ConnectionOptions { MaxConnections = 1 }));
        retirer.OnSetChanged(null, Set("orders", DiscoveredEndpoint.Create("127.0.0.1", port)));
        var limits = new ConnectionLimits();
        var context = Context(port);

        // Act
        var first = await retirer.ConnectAsync(limits, context, CancellationToken.None).AsTask().WaitAsync(s_wait);
        var second = retirer.ConnectAsync(limits, context, CancellationToken.None).AsTask();
        var waitedAtCap = !second.IsCompleted && limits.CountOpen("orders") == 1;
        await first.DisposeAsync();
        await using var opened = await second.WaitAsync(s_wait);

        // Assert
        Assert.True(waitedAtCap, "the second connection waits while the first is open");
        Assert.Equal(1, limits.CountOpen("orders"));
        Assert.Equal(1, retirer.CountOpen($"127.0.0.1:{port}"));
    }

    [Fact]
    public async Task ConnectAsync_AddressInTwoServices_ShortestTimeoutAppliesAndTheWaitFailsNamingServiceAndCap()
    {
        // Arrange: "orders" caps at one connection with a 10 s timeout; "billing" holds the same address with 2 s.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(16);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var clock = new RecordingTimeProvider();
        var retirer = Retirer(clock,
            ("orders", new ConnectionOptions { MaxConnections = 1, ConnectTimeout = TimeSpan.FromSeconds(10) }),
            ("billing", new ConnectionOptions { ConnectTimeout = TimeSpan.FromSeconds(2) }));
        var endpoint = DiscoveredEndpoint.Create("127.0.0.1", port);
        retirer.OnSetChanged(null, Set("orders", endpoint));
        retirer.OnSetChanged(null, Set("billing", endpoint));
        var limits = new ConnectionLimits();
        var context = Context(port);
        await using var first = await retirer.ConnectAsync(limits, context, CancellationToken.None).AsTask().WaitAsync(s_wait);
        _ = await clock.NextFiniteTimerAsync(s_wait);

        // Act: the second connection waits at the cap until the shortest timeout elapses.
        var second = retirer.ConnectAsync(limits, context, CancellationToken.None).AsTask();
        var due = await clock.NextFiniteTimerAsync(s_wait);
        clock.Advance(due);
        var error = await Assert.ThrowsAsync<TimeoutException>(() => second.WaitAsync(s_wait));

        // Assert
        Assert.Equal(TimeSpan.FromSeconds(2), due);
        Assert.Contains("already has 1 connection(s) open to service 'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("connect timeout of 2000 ms (service 'billing')", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, limits.CountOpen("orders"));
    }

    [Fact]
    public async Task ConnectAsync_ConnectHangsPastTheServicesTimeout_FailsNamingAddressServiceAndTimeout()
    {
        // Arrange: a listener that never accepts, its backlog filled, so the kernel leaves the next connect pending.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                await filler.ConnectAsync(IPAddress.Loopback, port).WaitAsync(s_wait);
            }

            var clock = new RecordingTimeProvider();
            var retirer = Retirer(clock, ("orders", new ConnectionOptions { ConnectTimeout = TimeSpan.FromMilliseconds(1500) }));
            retirer.OnSetChanged(null, Set("orders", DiscoveredEndpoint.Create("127.0.0.1", port)));

            // Act
            var connect = retirer.ConnectAsync(Context(port), CancellationToken.None).AsTask();
            var due = await clock.NextFiniteTimerAsync(s_wait);
            clock.Advance(due);
            var error = await Assert.ThrowsAsync<TimeoutException>(() => connect.WaitAsync(s_wait));

            // Assert
            Assert.Equal(TimeSpan.FromMilliseconds(1500), due);
            Assert.Equal($"Connecting to 127.0.0.1:{port} timed out after 1500 ms (the connect timeout of service 'orders').", error.Message);
            Assert.Equal(0, retirer.CountOpen($"127.0.0.1:{port}"));
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task ConnectAsync_AddressLeftEveryService_NoCapApplies()
    {
        // Arrange
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(16);
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var retirer = Retirer(new FakeTimeProviderClock(), ("orders", new ConnectionOptions { MaxConnections = 1 }));
        var endpoint = DiscoveredEndpoint.Create("127.0.0.1", port);
        var set = Set("orders", endpoint);
        retirer.OnSetChanged(null, set);
        retirer.OnSetChanged(set, EndpointSet.Create("orders", "test", [], 2, DateTimeOffset.UnixEpoch));
        var limits = new ConnectionLimits();

        // Act
        await using var first = await retirer.ConnectAsync(limits, Context(port), CancellationToken.None).AsTask().WaitAsync(s_wait);
        await using var second = await retirer.ConnectAsync(limits, Context(port), CancellationToken.None).AsTask().WaitAsync(s_wait);

        // Assert
        Assert.Empty(retirer.ServicesOf(endpoint.Address));
        Assert.Equal(0, limits.CountOpen("orders"));
    }

    [Fact]
    public async Task MaxConnections_CapTwoEightConcurrentHttp11Requests_AllSucceedAndTheBackendSeesAtMostTwoConnections()
    {
        // Arrange: a Kestrel backend that counts its open connections; each request waits until two are in flight, so
        // every request is issued before any completes and the pool wants more connections than the cap.
        await using var backend = await CountingBackend.StartAsync();
        await using var client = LodestarClient.Create();
        client.Configuration.Replace(new Dictionary<string, string?>
        {
            ["Lodestar:Services:orders:Endpoints:0"] = backend.Url,
            ["Lodestar:Services:orders:Connections:MaxConnections"] = "2",
        });

        // Act
        var requests = Enumerable.Range(0, 8).Select(_ => client.Http.GetAsync("http://orders/")).ToArray();
        var responses = await Task.WhenAll(requests).WaitAsync(s_wait);

        // Assert
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(8, backend.Requests);
        Assert.InRange(backend.MaxOpenConnections, 1, 2);
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task MaxConnections_NoCap_TheSameLoadOpensMoreThanTwoConnections()
    {
        // Arrange: the control for the capped test above: without a cap the pool opens a connection per waiting request.
        await using var backend = await CountingBackend.StartAsync();
        await using var client = LodestarClient.Create();
        client.Configuration.SetEndpoints("orders", backend.Url);

        // Act
        var requests = Enumerable.Range(0, 8).Select(_ => client.Http.GetAsync("http://orders/")).ToArray();
        var responses = await Task.WhenAll(requests).WaitAsync(s_wait);

        // Assert
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.True(backend.MaxOpenConnections > 2, $"without a cap the backend saw {backend.MaxOpenConnections} connections at most");
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Fact]
    public void Options_BoundFromServiceConfiguration_AndOutOfRangeValuesFailAtStartNamingServiceAndProperty()
    {
        // Arrange
        static ServiceProvider Build(Dictionary<string, string?> values) => new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build())
            .AddLogging()
            .AddLodestar().Services.BuildServiceProvider();
        using var good = Build(new()
        {
            ["Lodestar:Services:orders:Connections:ConnectTimeout"] = "00:00:01.5",
            ["Lodestar:Services:orders:Connections:MaxConnections"] = "16",
        });
        using var bad = Build(new()
        {
            ["Lodestar:Services:billing:Connections:ConnectTimeout"] = "00:00:00.010",
            ["Lodestar:Services:billing:Connections:MaxConnections"] = "0",
        });

        // Act
        var options = good.GetRequiredService<IOptionsMonitor<ConnectionOptions>>().Get("orders");
        var error = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IOptions<LodestarOptions>>().Value);

        // Assert
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.ConnectTimeout);
        Assert.Equal(16, options.MaxConnections);
        Assert.Contains(error.Failures, f => f.Contains("service 'billing'", StringComparison.Ordinal) && f.Contains("ConnectTimeout", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("service 'billing'", StringComparison.Ordinal) && f.Contains("MaxConnections is 0", StringComparison.Ordinal));
    }

    private static ConnectionRetirer Retirer(TimeProvider clock, params (string Service, ConnectionOptions Options)[] services)
    {
        var byName = services.ToDictionary(s => s.Service, s => s.Options, StringComparer.OrdinalIgnoreCase);
        return new ConnectionRetirer(clock, new StaticMonitor<LodestarOptions>(_ => new LodestarOptions()), NullLogger<ConnectionRetirer>.Instance,
            new StaticMonitor<ConnectionOptions>(name => byName.GetValueOrDefault(name ?? string.Empty) ?? new ConnectionOptions()));
    }

    private static SocketsHttpConnectionContext Context(int port)
    {
        // SocketsHttpConnectionContext has no public constructor; a handler hands one to its callback.
        SocketsHttpConnectionContext? captured = null;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = (context, _) =>
            {
                captured = context;
                throw new InvalidOperationException("captured");
            },
        };
        using var invoker = new HttpMessageInvoker(handler);
        try
        {
            invoker.Send(new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/"), CancellationToken.None);
        }
        catch (HttpRequestException)
        {
        }

        return captured ?? throw new InvalidOperationException("The handler did not call its connect callback.");
    }

    private static EndpointSet Set(string service, params DiscoveredEndpoint[] endpoints)
        => EndpointSet.Create(service, "test", endpoints, 1, DateTimeOffset.UnixEpoch);

    private sealed class FakeTimeProviderClock : Microsoft.Extensions.Time.Testing.FakeTimeProvider;

    private sealed class StaticMonitor<T>(Func<string?, T> get) : IOptionsMonitor<T>
    {
        public T CurrentValue => get(null);

        public T Get(string? name) => get(name);

        public IDisposable? OnChange(Action<T, string?> listener) => null;
    }

    /// <summary>A Kestrel backend (HTTP/1.1) that counts its open connections in connection middleware.</summary>
    private sealed class CountingBackend : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly TaskCompletionSource _twoInFlight = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _open;
        private int _maxOpen;
        private int _inFlight;
        private int _requests;

        private CountingBackend(WebApplication app) => _app = app;

        public string Url { get; private set; } = string.Empty;

        public int MaxOpenConnections => Volatile.Read(ref _maxOpen);

        public int Requests => Volatile.Read(ref _requests);

        public static async Task<CountingBackend> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            CountingBackend? backend = null;
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1;
                l.Use(next => async connection =>
                {
                    var open = Interlocked.Increment(ref backend!._open);
                    InterlockedMax(ref backend._maxOpen, open);
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref backend._open);
                    }
                });
            }));
            var app = builder.Build();
            backend = new CountingBackend(app);
            app.Run(backend.HandleAsync);
            await app.StartAsync();
            backend.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return backend;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        private async Task HandleAsync(HttpContext context)
        {
            Interlocked.Increment(ref _requests);
            if (Interlocked.Increment(ref _inFlight) >= 2)
            {
                _twoInFlight.TrySetResult();
            }

            try
            {
                await _twoInFlight.Task.WaitAsync(s_wait);
                context.Response.StatusCode = 200;
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        private static void InterlockedMax(ref int target, int value)
        {
            var current = Volatile.Read(ref target);
            while (value > current)
            {
                var seen = Interlocked.CompareExchange(ref target, value, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }
    }
}
