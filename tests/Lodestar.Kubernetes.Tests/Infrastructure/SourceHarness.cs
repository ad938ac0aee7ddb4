using Lodestar.Internal;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Tests.Infrastructure;

/// <summary>Runs one <see cref="EndpointSliceSource"/> against a fake API server, with fast retries.</summary>
internal sealed class SourceHarness : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly CancellationTokenSource _stop = new();
    private readonly KubernetesClientFactory _clients;
    private readonly ILoggerFactory _loggerFactory;
    private Task _run = Task.CompletedTask;

    private SourceHarness(TempDirectory directory, KubernetesSourceOptions options)
    {
        Directory = directory;
        Options = options;
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(Logs).SetMinimumLevel(LogLevel.Trace));
        _clients = new KubernetesClientFactory(TimeProvider.System, _loggerFactory) { Environment = static _ => null };
    }

    public TempDirectory Directory { get; }

    public KubernetesSourceOptions Options { get; }

    public RecordingObserver Observer { get; } = new();

    public CapturingLoggerProvider Logs { get; } = new();

    public static Task<SourceHarness> StartAsync(FakeKubernetesApiServer server, string service = "orders", Action<KubernetesSourceOptions>? configure = null)
    {
        var directory = new TempDirectory();
        var options = new KubernetesSourceOptions
        {
            KubeconfigPath = server.WriteKubeconfig(directory.Path),
            Namespace = "shop",
            RetryInitialDelay = TimeSpan.FromMilliseconds(20),
            RetryMaxDelay = TimeSpan.FromMilliseconds(200),
        };
        configure?.Invoke(options);
        var harness = new SourceHarness(directory, options);
        harness.Start(service);
        return Task.FromResult(harness);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(10));
        _clients.Dispose();
        _loggerFactory.Dispose();
        _stop.Dispose();
        Directory.Dispose();
    }

    private void Start(string service)
    {
        if (!KubernetesServiceName.TryParse(service, Options.ClusterDomain, out var name, out var ns))
        {
            throw new ArgumentException("not a service name", nameof(service));
        }

        var source = new EndpointSliceSource(name, ns, Options, _clients, TimeProvider.System, RandomSource.Shared, _loggerFactory.CreateLogger("Lodestar.Kubernetes"));
        _run = Task.Run(() => source.RunAsync(Observer, _stop.Token));
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
