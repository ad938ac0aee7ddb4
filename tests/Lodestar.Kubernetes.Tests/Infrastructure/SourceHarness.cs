using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Tests.Infrastructure;

/// <summary>Runs one <see cref="EndpointSliceSource"/> against a fake API server, with fast retries (or on a given clock).</summary>
internal sealed class SourceHarness : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly KubernetesClientFactory _clients;
    private readonly ILoggerFactory _loggerFactory;
    private readonly List<Task> _runs = [];

    private SourceHarness(TempDirectory directory, KubernetesSourceOptions options, TimeProvider timeProvider, Func<double>? random)
    {
        Directory = directory;
        Options = options;
        TimeProvider = timeProvider;
        _random = random;
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        _clients = new KubernetesClientFactory(timeProvider, _loggerFactory) { Environment = static _ => null };
        _clients.SharedWatches.Random = random;
    }

    private readonly Func<double>? _random;

    public TimeProvider TimeProvider { get; }

    public TempDirectory Directory { get; }

    public KubernetesSourceOptions Options { get; }

    public RecordingObserver Observer { get; } = new();

    public CapturingLoggerProvider Logs { get; } = new();

    /// <summary>Gets the shared namespace watches of the harness's clients.</summary>
    public NamespaceWatchHubs SharedWatches => _clients.SharedWatches;

    /// <summary>Starts a source for <paramref name="service"/>; without a clock it runs on real time with 20 to 200 ms retries.</summary>
    public static Task<SourceHarness> StartAsync(FakeKubernetesApiServer server, string service = "orders", Action<KubernetesSourceOptions>? configure = null,
        TimeProvider? timeProvider = null, Func<double>? random = null, string? token = null)
    {
        var directory = new TempDirectory();
        var options = new KubernetesSourceOptions
        {
            KubeconfigPath = server.WriteKubeconfig(directory.Path, token: token),
            Namespace = "shop",
        };
        if (timeProvider is null)
        {
            options.Backoff.InitialDelay = TimeSpan.FromMilliseconds(20);
            options.Backoff.MaxDelay = TimeSpan.FromMilliseconds(200);
        }

        configure?.Invoke(options);
        var harness = new SourceHarness(directory, options, timeProvider ?? TimeProvider.System, random);
        harness.Start(service);
        return Task.FromResult(harness);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_runs).WaitAsync(TimeSpan.FromSeconds(10));
        _clients.Dispose();
        _loggerFactory.Dispose();
        _stop.Dispose();
        Directory.Dispose();
    }

    /// <summary>Starts one more source on the same clients and options, and returns its observer.</summary>
    public RecordingObserver Follow(string service)
    {
        var observer = new RecordingObserver();
        Start(service, observer);
        return observer;
    }

    /// <summary>Starts one more source, stopped by <paramref name="stop"/> (or by disposing the harness), and returns its observer.</summary>
    public RecordingObserver Follow(string service, CancellationToken stop, out Task run)
    {
        var observer = new RecordingObserver();
        var linked = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, stop);
        run = Start(service, observer, linked.Token).ContinueWith(_ => linked.Dispose(), TaskScheduler.Default);
        return observer;
    }

    private void Start(string service) => Start(service, Observer);

    private Task Start(string service, RecordingObserver observer, CancellationToken? stop = null)
    {
        if (!KubernetesServiceName.TryParse(service, Options.ClusterDomain, out var name, out var ns))
        {
            throw new ArgumentException("not a service name", nameof(service));
        }

        IEndpointSource source = new EndpointSliceSource(name, ns, Options, _clients, TimeProvider, _loggerFactory.CreateLogger("Lodestar.Kubernetes"), _random,
            Options.ShareNamespaceWatches ? _clients.SharedWatches : null);
        var token = stop ?? _stop.Token;
        var run = Task.Run(() => source.RunAsync(observer, token));
        lock (_runs)
        {
            _runs.Add(run);
        }

        return run;
    }
}

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "lodestar-k8s-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        var path = System.IO.Path.Combine(Path, name);
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
