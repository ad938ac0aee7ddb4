using System.Globalization;
using Lodestar.Etcd.Client.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Etcd.DependencyInjection.Internal;

/// <summary>Checks <see cref="EtcdOptions"/> at startup.</summary>
internal sealed class EtcdOptionsValidator : IValidateOptions<EtcdOptions>
{
    public ValidateOptionsResult Validate(string? name, EtcdOptions options)
    {
        var failures = new List<string>();
        CheckAddress(options.Address, failures);

        if (options.Prefix is null)
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.Prefix)} is null; use an empty string for no prefix.");
        }

        if (string.IsNullOrEmpty(options.Username) != string.IsNullOrEmpty(options.Password))
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.Username)} and {nameof(EtcdOptions.Password)} must be set together.");
        }

        if (options.RequestTimeout < TimeSpan.FromMilliseconds(100) || options.RequestTimeout > TimeSpan.FromMinutes(2))
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.RequestTimeout)} is {options.RequestTimeout}; it must be between 100 ms and 2 minutes.");
        }

        if (options.Backoff is null)
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.Backoff)} is null.");
        }
        else if (options.Backoff.Validate($"{EtcdOptions.SectionName}:{nameof(EtcdOptions.Backoff)}") is { } backoff)
        {
            failures.Add(backoff);
        }

        if (options.WatchProgressTimeout != Timeout.InfiniteTimeSpan
            && (options.WatchProgressTimeout < TimeSpan.FromMilliseconds(100) || options.WatchProgressTimeout > TimeSpan.FromDays(1)))
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.WatchProgressTimeout)} is {options.WatchProgressTimeout}; it must be between 100 ms and 1 day, or Timeout.InfiniteTimeSpan (-00:00:00.001) to trust the stream.");
        }

        CheckSize(nameof(EtcdOptions.MaxRangeResponseBytes), options.MaxRangeResponseBytes, failures);
        CheckSize(nameof(EtcdOptions.MaxWatchMessageBytes), options.MaxWatchMessageBytes, failures);

        CheckFile(nameof(EtcdOptions.CaCertificatePath), options.CaCertificatePath, failures);
        CheckFile(nameof(EtcdOptions.ClientCertificatePath), options.ClientCertificatePath, failures);
        CheckFile(nameof(EtcdOptions.ClientKeyPath), options.ClientKeyPath, failures);
        if (!string.IsNullOrEmpty(options.ClientKeyPath) && string.IsNullOrEmpty(options.ClientCertificatePath))
        {
            failures.Add($"{nameof(EtcdOptions)}.{nameof(EtcdOptions.ClientKeyPath)} is set without {nameof(EtcdOptions.ClientCertificatePath)}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckAddress(string? address, List<string> failures)
    {
        const string Property = $"{nameof(EtcdOptions)}.{nameof(EtcdOptions.Address)}";
        const string Shape = "an absolute http or https URL with no path, query or user info, such as http://127.0.0.1:2379";
        if (string.IsNullOrWhiteSpace(address))
        {
            failures.Add($"{Property} is empty; it must be {Shape}, or several such URLs separated by commas.");
            return;
        }

        var entries = EtcdAddressList.Split(address);
        if (entries.Length == 1)
        {
            if (!EtcdAddressList.IsValid(entries[0]))
            {
                failures.Add($"{Property} is '{EtcdAddressList.Shown(address)}'; it must be {Shape}.");
            }

            return;
        }

        for (var i = 0; i < entries.Length; i++)
        {
            var position = $"entry {(i + 1).ToString(CultureInfo.InvariantCulture)} of {entries.Length.ToString(CultureInfo.InvariantCulture)}";
            if (entries[i].Length == 0)
            {
                failures.Add($"{Property} has an empty {position} in '{EtcdAddressList.Shown(address)}'; separate the URLs with single commas.");
            }
            else if (!EtcdAddressList.IsValid(entries[i]))
            {
                failures.Add($"{Property} {position}, '{EtcdAddressList.Shown(entries[i])}', is not {Shape}.");
            }
        }
    }

    private static void CheckSize(string property, long bytes, List<string> failures)
    {
        const long Min = 1024;
        const long Max = 2L * 1024 * 1024 * 1024;
        if (bytes < Min || bytes > Max)
        {
            failures.Add($"{nameof(EtcdOptions)}.{property} is {bytes.ToString(CultureInfo.InvariantCulture)}; it must be between {Min.ToString(CultureInfo.InvariantCulture)} bytes (1 KiB) and {Max.ToString(CultureInfo.InvariantCulture)} bytes (2 GiB).");
        }
    }

    private static void CheckFile(string property, string? path, List<string> failures)
    {
        if (!string.IsNullOrEmpty(path) && !File.Exists(path))
        {
            failures.Add($"{nameof(EtcdOptions)}.{property} is '{path}', which does not exist.");
        }
    }
}

/// <summary>Binds <see cref="EtcdOptions"/> from the <c>Lodestar:Etcd</c> section when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class EtcdOptionsSetup(IServiceProvider services) : IConfigureOptions<EtcdOptions>
{
    public void Configure(EtcdOptions options)
    {
        var configuration = services.GetService<IConfiguration>();
        configuration?.GetSection(EtcdOptions.SectionName).Bind(options);
    }
}
