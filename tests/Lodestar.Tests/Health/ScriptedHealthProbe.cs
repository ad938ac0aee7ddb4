using System.Collections.Concurrent;
using Lodestar.Endpoints;
using Lodestar.Health;

namespace Lodestar.Tests.Health;

/// <summary>A probe protocol whose answers the test sets per endpoint address; counts probes, releases and disposals.</summary>
internal sealed class ScriptedProbeFactory(string protocol = ScriptedProbeFactory.Name) : HealthProbeFactory
{
    public const string Name = "Scripted";

    private readonly ConcurrentQueue<ScriptedProbe> _created = new();

    public override string Protocol => protocol;

    public IReadOnlyCollection<ScriptedProbe> Created => _created;

    /// <summary>Gets or sets the answer per address; an address not listed is healthy.</summary>
    public ConcurrentDictionary<string, Func<CancellationToken, ValueTask<HealthProbeResult>>> Answers { get; } = new();

    public ScriptedProbe Single => Assert.Single(_created);

    public override HealthProbe Create(string serviceName, HealthCheckOptions options)
    {
        var probe = new ScriptedProbe(this, serviceName, options);
        _created.Enqueue(probe);
        return probe;
    }

    public void Answer(string address, HealthProbeResult result) => Answers[address] = _ => ValueTask.FromResult(result);

    internal sealed class ScriptedProbe(ScriptedProbeFactory factory, string serviceName, HealthCheckOptions options) : HealthProbe
    {
        private readonly ConcurrentDictionary<string, int> _probes = new();
        private readonly ConcurrentQueue<string> _released = new();
        private int _disposed;

        public string ServiceName => serviceName;

        public HealthCheckOptions Options => options;

        public IReadOnlyCollection<string> Released => _released;

        public bool Disposed => Volatile.Read(ref _disposed) == 1;

        public int Probes(string address) => _probes.GetValueOrDefault(address);

        protected override ValueTask<HealthProbeResult> ProbeCoreAsync(DiscoveredEndpoint endpoint, CancellationToken cancellationToken)
        {
            _probes.AddOrUpdate(endpoint.Address, 1, static (_, n) => n + 1);
            return factory.Answers.TryGetValue(endpoint.Address, out var answer) ? answer(cancellationToken) : ValueTask.FromResult(HealthProbeResult.Healthy);
        }

        protected override void OnEndpointReleased(DiscoveredEndpoint endpoint) => _released.Enqueue(endpoint.Address);

        protected override void Dispose(bool disposing) => Volatile.Write(ref _disposed, 1);
    }
}
