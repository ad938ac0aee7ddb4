using System.Collections.Frozen;
using Lodestar.Http;
using Microsoft.Extensions.Options;

namespace Lodestar.Health.Internal;

/// <summary>
/// The health probe factories registered in the container, by protocol (case-insensitive); <see cref="HealthCheckProtocols.Http"/>
/// is built in unless a registered factory replaces it. Of two registered with one protocol, the later wins.
/// </summary>
internal sealed class HealthProbeFactories
{
    private readonly FrozenDictionary<string, HealthProbeFactory> _factories;

    public HealthProbeFactories(IEnumerable<HealthProbeFactory> factories)
    {
        var byProtocol = new Dictionary<string, HealthProbeFactory>(StringComparer.OrdinalIgnoreCase);
        foreach (var factory in factories)
        {
            byProtocol[factory.Protocol] = factory;
        }

        _factories = byProtocol.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Gets the built-in protocols alone (tests and tools).</summary>
    public static HealthProbeFactories BuiltIn { get; } = new([]);

    /// <summary>
    /// Finds the factory for <paramref name="protocol"/>; <paramref name="factory"/> is <see langword="null"/> (with a
    /// <see langword="true"/> result) for the built-in HTTP probe.
    /// </summary>
    public bool TryGet(string? protocol, out HealthProbeFactory? factory)
    {
        if (string.IsNullOrEmpty(protocol))
        {
            factory = null;
            return false;
        }

        if (_factories.TryGetValue(protocol, out factory))
        {
            return true;
        }

        return string.Equals(protocol, HealthCheckProtocols.Http, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Says that no probe serves <paramref name="protocol"/>, for <paramref name="subject"/>, and what to add.</summary>
    public static string DescribeMissing(string? protocol, string subject)
    {
        var remedy = string.Equals(protocol, HealthCheckProtocols.Grpc, StringComparison.OrdinalIgnoreCase)
            ? "add the Lodestar.Grpc package and call services.AddLodestarGrpc()"
            : $"use '{HealthCheckProtocols.Http}' or '{HealthCheckProtocols.Grpc}', or register a {nameof(HealthProbeFactory)} whose {nameof(HealthProbeFactory.Protocol)} is '{protocol}'";
        return $"{subject} use {nameof(HealthCheckOptions.Protocol)} '{protocol}', but no health probe for it is registered; {remedy}.";
    }

    /// <summary>Adds a failure to <paramref name="failures"/> when no probe serves <paramref name="protocol"/>.</summary>
    public void Validate(string? protocol, string subject, List<string> failures)
    {
        if (!TryGet(protocol, out _))
        {
            failures.Add(DescribeMissing(protocol, subject));
        }
    }
}

/// <summary>
/// Checks at startup that every service's and client's <see cref="HealthCheckOptions.Protocol"/> has a probe, naming
/// the service or client (the other check settings are <c>ResilienceOptionsValidator</c>'s).
/// </summary>
internal sealed class HealthProbeOptionsValidator(HealthProbeFactories probes) : IValidateOptions<HealthCheckOptions>, IValidateOptions<LodestarClientOptions>
{
    public ValidateOptionsResult Validate(string? name, HealthCheckOptions options)
        => Result(options.Protocol, $"{nameof(HealthCheckOptions)} of service '{name}': the health checks");

    public ValidateOptionsResult Validate(string? name, LodestarClientOptions options)
        => Result(options.HealthChecks.Protocol, $"{nameof(LodestarClientOptions)} of client '{name}': {nameof(options.HealthChecks)}");

    private ValidateOptionsResult Result(string? protocol, string subject)
    {
        var failures = new List<string>();
        probes.Validate(protocol, subject, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
