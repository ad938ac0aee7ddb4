using System.Reflection;
using Lodestar.Discovery;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.DependencyInjection.Internal;

/// <summary>Checks policy and source names against what is registered, at startup.</summary>
internal sealed class LodestarOptionsValidator(IServiceProvider services) : IValidateOptions<LodestarOptions>, IValidateOptions<LodestarClientOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarOptions options)
    {
        var failures = new List<string>();
        if (options.ResolutionTimeout < TimeSpan.FromMilliseconds(100) || options.ResolutionTimeout > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{nameof(LodestarOptions)}.{nameof(LodestarOptions.ResolutionTimeout)} is {options.ResolutionTimeout}; it must be between 100 ms and 10 minutes.");
        }

        if (options.PanicThreshold is < 0 or > 1 || double.IsNaN(options.PanicThreshold))
        {
            failures.Add($"{nameof(LodestarOptions)}.{nameof(LodestarOptions.PanicThreshold)} is {options.PanicThreshold}; it must be between 0 and 1.");
        }

        if (options.RetireQuietPeriod < TimeSpan.Zero || options.RetireQuietPeriod > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{nameof(LodestarOptions)}.{nameof(LodestarOptions.RetireQuietPeriod)} is {options.RetireQuietPeriod}; it must be between 0 and 5 minutes.");
        }

        CheckPolicy(nameof(LodestarOptions) + "." + nameof(LodestarOptions.DefaultPolicy), options.DefaultPolicy, failures);
        CheckSource(nameof(LodestarOptions) + "." + nameof(LodestarOptions.DefaultSource), options.DefaultSource, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public ValidateOptionsResult Validate(string? name, LodestarClientOptions options)
    {
        var failures = new List<string>();
        var prefix = $"{nameof(LodestarClientOptions)} of client '{name}'";
        if (options.MaxAttempts is < 1 or > 10)
        {
            failures.Add($"{prefix}: {nameof(options.MaxAttempts)} is {options.MaxAttempts}; it must be between 1 and 10.");
        }

        if (options.ConnectTimeout < TimeSpan.FromMilliseconds(100) || options.ConnectTimeout > TimeSpan.FromMinutes(2))
        {
            failures.Add($"{prefix}: {nameof(options.ConnectTimeout)} is {options.ConnectTimeout}; it must be between 100 ms and 2 minutes.");
        }

        if (options.Policy is not null)
        {
            CheckPolicy(prefix + ": " + nameof(options.Policy), options.Policy, failures);
        }

        CheckSource(prefix + ": " + nameof(options.Source), options.Source, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private void CheckPolicy(string what, string? policy, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(policy))
        {
            failures.Add($"{what} is empty.");
            return;
        }

        var names = services.GetServices<ILoadBalancingPolicy>().Select(p => p.Name).ToList();
        if (!names.Contains(policy, StringComparer.OrdinalIgnoreCase))
        {
            failures.Add($"{what} is '{policy}', which is not a registered load-balancing policy (registered: {string.Join(", ", names)}).");
        }
    }

    private void CheckSource(string what, string? source, List<string> failures)
    {
        if (source is null)
        {
            return;
        }

        var names = services.GetServices<IEndpointSourceProvider>().Select(p => p.Name).ToList();
        if (!names.Contains(source, StringComparer.OrdinalIgnoreCase))
        {
            failures.Add($"{what} is '{source}', which is not a registered endpoint source (registered: {string.Join(", ", names)}).");
        }
    }
}

/// <summary>Binds <see cref="LodestarOptions"/> from configuration when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class LodestarOptionsSetup(IServiceProvider services) : IConfigureOptions<LodestarOptions>
{
    public void Configure(LodestarOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        configuration?.GetSection(LodestarOptions.SectionName).Bind(options);
    }
}

/// <summary>
/// Binds each client's <see cref="LodestarClientOptions"/> from the <c>Lodestar:Clients:{name}</c> configuration
/// section when an <see cref="IConfiguration"/> is registered; code passed to <c>AddLodestar</c> runs after it.
/// </summary>
internal sealed class LodestarClientOptionsSetup(IServiceProvider services) : IConfigureNamedOptions<LodestarClientOptions>
{
    public void Configure(LodestarClientOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, LodestarClientOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        var section = configuration?.GetSection(LodestarOptions.SectionName).GetSection("Clients").GetSection(name ?? Options.DefaultName);
        if (section is null || !section.Exists())
        {
            return;
        }

        // The health settings are overrides of the service's: only the keys present in configuration count as set. The
        // binder calls every setter of a section it visits (with the current value when the key is absent), so keep
        // the three as they were and then set the present keys alone.
        var outlier = options.OutlierDetection.Clone();
        var checks = options.HealthChecks.Clone();
        var breaker = options.CircuitBreaker.Clone();
        section.Bind(options);
        options.OutlierDetection.CopyFrom(outlier);
        options.HealthChecks.CopyFrom(checks);
        options.CircuitBreaker.CopyFrom(breaker);
        BindPresentKeys(section.GetSection(nameof(options.OutlierDetection)), options.OutlierDetection, outlier);
        BindPresentKeys(section.GetSection(nameof(options.HealthChecks)), options.HealthChecks, checks);
        BindPresentKeys(section.GetSection(nameof(options.CircuitBreaker)), options.CircuitBreaker, breaker);
    }

    private static void BindPresentKeys<T>(IConfigurationSection section, T target, T scratch)
        where T : class
    {
        if (!section.Exists())
        {
            return;
        }

        section.Bind(scratch);
        foreach (var key in section.GetChildren())
        {
            var property = typeof(T).GetProperty(key.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is { CanWrite: true })
            {
                property.SetValue(target, property.GetValue(scratch));
            }
        }
    }
}
