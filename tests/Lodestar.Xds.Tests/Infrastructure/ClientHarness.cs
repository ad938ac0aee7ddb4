using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Bootstrap.Internal;
using Lodestar.Xds.Client.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>A fake management server and an xDS client connected to it, with a recording clock and captured logs.</summary>
internal sealed class ClientHarness : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;

    private ClientHarness(FakeXdsServer server, XdsClient client, RecordingTimeProvider clock, CapturingLoggerProvider logs, ILoggerFactory loggerFactory)
    {
        Server = server;
        Client = client;
        Clock = clock;
        Logs = logs;
        _loggerFactory = loggerFactory;
    }

    public FakeXdsServer Server { get; }

    public XdsClient Client { get; }

    public RecordingTimeProvider Clock { get; }

    public CapturingLoggerProvider Logs { get; }

    public static async Task<ClientHarness> StartAsync(
        Action<XdsOptions>? configure = null, IEnumerable<string>? serverFeatures = null, bool serverSupportsDelta = true,
        string? tokenFile = null, FakeXdsServer? server = null)
    {
        server ??= await FakeXdsServer.StartAsync(supportsDelta: serverSupportsDelta);
        var options = new XdsOptions { BootstrapJson = server.Bootstrap(serverFeatures: serverFeatures, tokenFile: tokenFile) };
        configure?.Invoke(options);
        var clock = new RecordingTimeProvider();
        var logs = new CapturingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var bootstrap = XdsBootstrapParser.Load(options, static _ => null);

        // A fixed draw of 1.0 makes every backoff delay its ceiling: 800 ms, 1.6 s, 3.2 s, ...
        var client = new XdsClient(bootstrap, options, clock, loggerFactory.CreateLogger<XdsClient>(), new SecretRedactor(), static () => 1.0);
        return new ClientHarness(server, client, clock, logs, loggerFactory);
    }

    /// <summary>Waits for the next timer with exactly <paramref name="due"/>, skipping others (does-not-exist timers), and fires it.</summary>
    public async Task AdvancePastTimerAsync(TimeSpan due)
    {
        while (true)
        {
            var next = await Clock.NextFiniteTimerAsync();
            if (next == due)
            {
                Clock.Advance(due);
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
        _loggerFactory.Dispose();
    }
}
